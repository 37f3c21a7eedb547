import http from 'node:http';
import { Queue } from 'bullmq';
import { QueueName } from '@onnx-batch/shared';
import { dropPrefix, newRedis, testEnv, type TestEnv } from '../helpers/env';
import { isAlive, spawnService, type Spawned } from '../helpers/processes';
import { parseExposition, sampleValue } from '../helpers/prometheus';
import { eventually, ProcessGroup, sleep } from '../helpers/reliability';

/**
 * API_PROCESSES=2: one port, two API processes under a node:cluster primary. Every request
 * below goes on a connection of its own, so the primary hands them to the processes in turn;
 * which process served a request is read from its `request` log line (by X-Request-Id → pid).
 */
const MAIN_KEY = 'main-key-0123456789';
const LIMITED_KEY = 'limited-key-0123456789';
const RATE_LIMIT = 30;

interface Answer {
  status: number;
  body: Record<string, unknown>;
  text: string;
  /** When the answer arrived (Date.now()). */
  at: number;
}

let requestCounter = 0;

/** One request on a new connection (no keep-alive agent); answers the status, body and request id. */
function send(
  url: string,
  path: string,
  options: { method?: string; key?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<Answer & { requestId: string }> {
  const requestId = `cluster-test-${process.pid}-${++requestCounter}`;
  const payload = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = {
    'x-request-id': requestId,
    ...(options.key ? { authorization: `Bearer ${options.key}` } : {}),
    ...options.headers,
  };
  if (payload !== undefined) headers['content-type'] = 'application/json';
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: options.method ?? 'GET', agent: false, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: Record<string, unknown> = {};
        try {
          body = JSON.parse(text) as Record<string, unknown>;
        } catch {
          // not JSON (metrics)
        }
        resolve({ status: res.statusCode ?? 0, body, text, at: Date.now(), requestId });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** The pid of the API process that logged the request line of each request id. */
async function servedBy(api: Spawned, requestIds: string[]): Promise<number[]> {
  const pidOf = (id: string): number | undefined =>
    api.lines((l) => l.message === 'request' && l.requestId === id)[0]?.pid as number | undefined;
  await eventually('every request has its log line', () => requestIds.every((id) => pidOf(id) !== undefined), 5000, 20);
  return requestIds.map((id) => pidOf(id) as number);
}

/** Pids of the API processes that have logged `api listening`. */
const listeningPids = (api: Spawned): number[] => api.lines((l) => l.message === 'api listening').map((l) => l.pid as number);

const irisJob = (version = '2') => ({ model: 'iris', version, inputs: [[5.1, 3.5, 1.4, 0.2]] });

async function startCluster(group: ProcessGroup, env: TestEnv): Promise<{ api: Spawned; url: string }> {
  const { proc, url } = await group.api(env);
  await eventually('both API processes listen', () => listeningPids(proc).length === 2, 30_000);
  return { api: proc, url };
}

describe('API_PROCESSES=2: two API processes share one port', () => {
  const group = new ProcessGroup();
  const env = testEnv({
    API_PROCESSES: '2',
    API_KEYS: `main:${MAIN_KEY},limited:${LIMITED_KEY}`,
    RATE_LIMIT_PER_MINUTE: String(RATE_LIMIT),
  });
  let api: Spawned;
  let url: string;

  beforeAll(async () => {
    ({ api, url } = await startCluster(group, env));
  }, 60_000);

  afterAll(async () => {
    await group.stopAll('SIGTERM');
    const redis = newRedis();
    await dropPrefix(redis, env.REDIS_PREFIX);
    await redis.quit();
  });

  it('when requests arrive on new connections, then both API processes serve them and the primary serves none', async () => {
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await send(url, '/livez'));

    const pids = await servedBy(
      api,
      answers.map((a) => a.requestId),
    );

    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(new Set(pids)).toEqual(new Set(listeningPids(api)));
    expect(pids).not.toContain(api.pid);
  });

  it(
    'when one key sends more than RATE_LIMIT_PER_MINUTE requests through both processes, then exactly the limit is served and ' +
      'the rest get 429',
    async () => {
      // The budget is per clock minute: start with enough of the minute left for 40 requests (about 1 s; 6 s kept).
      if (Date.now() % 60_000 > 54_000) await sleep(60_000 - (Date.now() % 60_000) + 100);
      const answers = [];
      for (let i = 0; i < RATE_LIMIT + 10; i++) answers.push(await send(url, '/v1/models', { key: LIMITED_KEY }));

      const statuses = answers.map((a) => a.status);
      const pids = await servedBy(
        api,
        answers.map((a) => a.requestId),
      );

      expect(statuses.filter((s) => s === 200)).toHaveLength(RATE_LIMIT);
      expect(statuses.filter((s) => s === 429)).toHaveLength(10);
      expect(statuses.slice(RATE_LIMIT)).toEqual(Array(10).fill(429));
      expect(new Set(pids.slice(0, RATE_LIMIT)).size).toBe(2);
      expect(new Set(pids.slice(RATE_LIMIT)).size).toBe(2);
    },
  );

  it(
    'when one Idempotency-Key is submitted at once through both processes, then there is one job: one 202 and ' + '200s naming it',
    async () => {
      const answers = await Promise.all(
        Array.from({ length: 8 }, () =>
          send(url, '/v1/batch-predict', {
            method: 'POST',
            key: MAIN_KEY,
            headers: { 'idempotency-key': 'cluster-key-1' },
            body: irisJob(),
          }),
        ),
      );

      const pids = await servedBy(
        api,
        answers.map((a) => a.requestId),
      );
      const statuses = answers.map((a) => a.status).sort();

      expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 200, 202]);
      expect(new Set(answers.map((a) => a.body.jobId)).size).toBe(1);
      expect(new Set(pids).size).toBe(2);
    },
  );

  it(
    'when long polls wait in both processes and a worker finishes the job, then every poll is answered at the finish, not at ' +
      'its timeout',
    async () => {
      const submitted = await send(url, '/v1/batch-predict', { method: 'POST', key: MAIN_KEY, body: irisJob() });
      expect(submitted.status).toBe(202);
      const jobId = String(submitted.body.jobId);
      const polls = Array.from({ length: 6 }, () => send(url, `/v1/batch-result/${jobId}?wait=25`, { key: MAIN_KEY }));
      await sleep(500); // the polls are held: no worker runs yet

      const workerStarted = Date.now();
      const worker = await group.worker(env);
      try {
        const answers = await Promise.all(polls);
        const pids = await servedBy(
          api,
          answers.map((a) => a.requestId),
        );

        expect(answers.map((a) => [a.status, a.body.status])).toEqual(Array(6).fill([200, 'completed']));
        for (const answer of answers) {
          expect(answer.at).toBeGreaterThan(workerStarted);
          expect(answer.at - submitted.at).toBeLessThan(25_000);
        }
        expect(new Set(pids).size).toBe(2);
      } finally {
        await worker.stop('SIGTERM');
      }
    },
  );

  it(
    'when /metrics is scraped through either process, then counters are the sum of both processes and Redis-read gauges are ' +
      'not doubled',
    async () => {
      const submits = [];
      for (let i = 0; i < 6; i++) submits.push(await send(url, '/v1/batch-predict', { method: 'POST', key: MAIN_KEY, body: irisJob('1') }));
      const submitPids = await servedBy(
        api,
        submits.map((a) => a.requestId),
      );
      const connection = newRedis();
      const queue = new Queue(QueueName.Chunks, { connection, prefix: env.REDIS_PREFIX });

      const scrapes = [await send(url, '/metrics'), await send(url, '/metrics')];
      const counts = await queue.getJobCounts('waiting', 'prioritized', 'active');
      await queue.close();
      await connection.quit();

      const scrapePids = await servedBy(
        api,
        scrapes.map((a) => a.requestId),
      );
      expect(submits.map((a) => a.status)).toEqual(Array(6).fill(202));
      expect(new Set(submitPids).size).toBe(2);
      expect(new Set(scrapePids).size).toBe(2);
      for (const scrape of scrapes) {
        expect(scrape.status).toBe(200);
        const samples = parseExposition(scrape.text);
        expect(sampleValue(samples, 'onnx_batch_jobs_submitted_total', { model: 'iris', version: '1' })).toBe(6);
        for (const state of ['waiting', 'prioritized', 'active'] as const) {
          expect(sampleValue(samples, 'onnx_batch_queue_jobs', { queue: 'chunks', state })).toBe(counts[state]);
        }
      }
      expect((counts.waiting ?? 0) + (counts.prioritized ?? 0)).toBeGreaterThanOrEqual(6);
    },
  );
});

describe('API_PROCESSES=2: the primary supervises its processes', () => {
  const group = new ProcessGroup();
  const env = testEnv({ API_PROCESSES: '2', SHUTDOWN_GRACE_MS: '5000' });

  afterAll(async () => {
    await group.stopAll();
    const redis = newRedis();
    await dropPrefix(redis, env.REDIS_PREFIX);
    await redis.quit();
  });

  it('when an API process is killed, then the primary starts another and both processes serve the port', async () => {
    const { api, url } = await startCluster(group, env);
    const [victim, survivor] = listeningPids(api) as [number, number];

    process.kill(victim, 'SIGKILL');
    await eventually('a third API process listens', () => listeningPids(api).length === 3, 30_000);
    const replacement = listeningPids(api)[2] as number;
    const answers = [];
    for (let i = 0; i < 6; i++) answers.push(await send(url, '/livez'));
    const pids = await servedBy(
      api,
      answers.map((a) => a.requestId),
    );

    expect(api.lines((l) => l.message === 'an API process exited; starting another')[0]).toMatchObject({ pid: victim, signal: 'SIGKILL' });
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(new Set(pids)).toEqual(new Set([survivor, replacement]));
    await api.stop('SIGTERM');
  }, 60_000);

  it('when the primary gets SIGTERM, then every API process closes cleanly and the primary exits 0', async () => {
    const { api } = await startCluster(group, env);
    const children = listeningPids(api);

    const code = await api.stop('SIGTERM');

    expect(code).toBe(0);
    expect(children.every((pid) => !isAlive(pid))).toBe(true);
    const stopped = api.lines((l) => l.message === 'stopped').map((l) => l.pid);
    expect(stopped).toEqual(expect.arrayContaining([...children, api.pid]));
  }, 60_000);

  it('when the API processes cannot start (no model repository), then the primary stops and exits 1 naming the failure', async () => {
    const api = spawnService('api', { ...env, LOG_LEVEL: 'info', MODELS_DIR: '/nonexistent/onnx-batch-models' });
    group.all.push(api);

    const code = await new Promise<number | null>((resolve) => api.child.once('exit', resolve));

    expect(code).toBe(1);
    expect(api.lines((l) => l.message === 'an API process failed to start; stopping')).toHaveLength(1);
  }, 60_000);
});
