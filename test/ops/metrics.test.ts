import net from 'node:net';
import request from 'supertest';
import { Registry } from 'prom-client';
import { createLogger } from '@onnx-batch/shared';
import { startMetricsServer, startWorkerService, type WorkerService } from '@onnx-batch/worker';
import { waitForJob } from '../helpers/http';
import { parseExposition, sampleValue } from '../helpers/prometheus';
import { freePort } from '../helpers/private-redis';
import { startStack, type Stack } from '../helpers/stack';

const ROW = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

describe('Prometheus metrics of the API and of a worker', () => {
  let stack: Stack;
  let worker: WorkerService | null = null;
  let workerMetricsUrl: string;
  const logger = createLogger('error', 'test');

  beforeAll(async () => {
    // The API alone at first: jobs stay queued until the worker is started in a later test.
    const port = await freePort();
    stack = await startStack({ METRICS_PORT: String(port) }, false);
    workerMetricsUrl = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await worker?.close();
    await stack.close();
  });

  const apiMetrics = async (): Promise<string> => {
    const response = await request(stack.url).get('/metrics');
    expect(response.status).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return response.text;
  };
  const workerMetrics = async (): Promise<string> => {
    const response = await fetch(`${workerMetricsUrl}/metrics`);
    expect(response.status).toBe(200);
    return response.text();
  };
  const submit = async (rows: unknown[]): Promise<string> => {
    const response = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs: rows });
    expect(response.status).toBe(202);
    return String(response.body.jobId);
  };

  it('when jobs are submitted and one is cancelled, then submitted and cancelled count them by model and version', async () => {
    // Arrange
    const cancelledJob = await submit([ROW]);

    // Act
    expect((await request(stack.url).post(`/v1/batch-result/${cancelledJob}/cancel`)).status).toBe(200);
    await submit([ROW, ROW, ROW]);
    const text = await apiMetrics();

    // Assert
    const samples = parseExposition(text);
    expect(sampleValue(samples, 'onnx_batch_jobs_submitted_total', { model: 'iris', version: '2' })).toBe(2);
    expect(sampleValue(samples, 'onnx_batch_jobs_cancelled_total', { model: 'iris', version: '2' })).toBe(1);
  });

  it('when chunks wait in the chunks queue, then the queue gauges read from BullMQ show them as prioritized', async () => {
    const samples = parseExposition(await apiMetrics());

    // Both chunks: a cancelled job's chunk stays queued until a worker takes it and skips it.
    expect(sampleValue(samples, 'onnx_batch_queue_jobs', { queue: 'chunks', state: 'prioritized' })).toBe(2);
    for (const state of ['waiting', 'active', 'delayed', 'failed'])
      expect(sampleValue(samples, 'onnx_batch_queue_jobs', { queue: 'chunks', state })).toBe(0);
    expect(sampleValue(samples, 'onnx_batch_queue_jobs', { queue: 'batches', state: 'waiting-children' })).toBe(0);
    expect(sampleValue(samples, 'onnx_batch_queue_workers', { queue: 'chunks' })).toBe(0);
  });

  it('when requests name job ids and unknown paths, then durations are labelled by route pattern and never by a raw URL', async () => {
    // Act
    await request(stack.url).get('/v1/batch-result/0b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
    await request(stack.url).get('/v1/batch-result/1b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
    await request(stack.url).get('/batch-result/2b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
    await request(stack.url).get('/v1/models/iris/versions/1');
    await request(stack.url).get('/no/such/route/3b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b');
    const text = await apiMetrics();

    // Assert
    const samples = parseExposition(text);
    const count = (labels: Record<string, string>): number | undefined =>
      sampleValue(samples, 'onnx_batch_http_request_duration_seconds_count', labels);
    expect(count({ method: 'GET', route: '/v1/batch-result/:id', status: '404' })).toBe(2);
    expect(count({ method: 'GET', route: '/batch-result/:id', status: '404' })).toBe(1);
    expect(count({ method: 'GET', route: '/v1/models/:name/versions/:version', status: '200' })).toBe(1);
    expect(count({ method: 'GET', route: '(unmatched)', status: '404' })).toBe(1);
    expect(count({ method: 'POST', route: '/v1/batch-predict', status: '202' })).toBe(2);
    expect(text).not.toMatch(UUID);
  });

  it(
    'when a worker runs the queued job, then it exports completed jobs, rows, end-to-end latency and per-run ' + 'inference metrics',
    async () => {
      // Arrange
      worker = await startWorkerService({ ...stack.config }, logger);
      const job = await submit([ROW, [6.7, 3.0, 5.2, 2.3]]);

      // Act
      expect((await waitForJob(stack.url, job)).status).toBe('completed');
      const samples = parseExposition(await workerMetrics());

      // Assert: both queued jobs ran (3 + 2 rows); the cancelled one never did.
      const iris = { model: 'iris', version: '2' };
      expect(sampleValue(samples, 'onnx_batch_jobs_completed_total', iris)).toBe(2);
      expect(sampleValue(samples, 'onnx_batch_rows_processed_total', { ...iris, outcome: 'ok' })).toBe(5);
      expect(sampleValue(samples, 'onnx_batch_job_duration_seconds_count', { ...iris, status: 'completed' })).toBe(2);
      expect(sampleValue(samples, 'onnx_batch_job_duration_seconds_sum', { ...iris, status: 'completed' })).toBeGreaterThan(0);
      expect(sampleValue(samples, 'onnx_batch_inference_duration_seconds_count', iris)).toBeGreaterThanOrEqual(1);
      expect(sampleValue(samples, 'onnx_batch_inference_batch_rows_sum', iris)).toBe(5);
      expect(sampleValue(samples, 'onnx_batch_inference_backlog_rows', {})).toBe(0);
      expect(sampleValue(samples, 'onnx_batch_process_cpu_user_seconds_total', {})).toBeGreaterThan(0);
      expect(sampleValue(samples, 'onnx_batch_nodejs_eventloop_lag_seconds', {})).toBeDefined();
    },
  );

  it('when a worker is connected, then the API counts it among the consumers of the chunks queue', async () => {
    const samples = parseExposition(await apiMetrics());

    expect(sampleValue(samples, 'onnx_batch_queue_workers', { queue: 'chunks' })).toBeGreaterThanOrEqual(1);
    expect(sampleValue(samples, 'onnx_batch_queue_jobs', { queue: 'chunks', state: 'prioritized' })).toBe(0);
  });

  it('when the worker metrics server is asked for /livez or an unknown path, then it answers 200 and 404', async () => {
    expect((await fetch(`${workerMetricsUrl}/livez`)).status).toBe(200);
    expect((await fetch(`${workerMetricsUrl}/nope`)).status).toBe(404);
  });

  it('when every exported name is listed, then each starts with onnx_batch_ and no label value is a job id', async () => {
    const texts = [await apiMetrics(), await workerMetrics()];
    const names = texts.flatMap((t) => [...t.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));

    expect(names.length).toBeGreaterThan(20);
    expect(names.filter((n) => !n.startsWith('onnx_batch_'))).toEqual([]);
    for (const text of texts) expect(text).not.toMatch(UUID);
  });
});

describe('worker metrics server', () => {
  const logger = createLogger('error', 'test');

  it('when METRICS_PORT is 0, then no server is started', async () => {
    expect(await startMetricsServer(new Registry(), { port: 0, host: '127.0.0.1' }, logger)).toBeNull();
  });

  it(
    'when the port is taken (several workers on one host), then the worker runs on without a metrics server instead ' + 'of failing',
    async () => {
      // Arrange
      const port = await freePort();
      const blocker = net.createServer();
      await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));

      // Act
      const server = await startMetricsServer(new Registry(), { port, host: '127.0.0.1' }, logger);

      // Assert
      expect(server).toBeNull();
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    },
  );
});
