import { rmSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { formatFloat, JobStore } from '@onnx-batch/shared';
import { startWorkerService } from '@onnx-batch/worker';
import { capturedLogger } from '../helpers/captured-logs';
import { jobKey, newRedis } from '../helpers/env';
import { loadGolden } from '../helpers/golden';
import { addVersionCopy, copyModels, type ModelsCopy } from '../helpers/model-files';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import { eventually } from '../helpers/reliability';
import { startStack, type Stack } from '../helpers/stack';

/**
 * KServe / Triton Open Inference Protocol v2 (REST) against the real API, worker, Redis and models:
 * the protocol's own examples (KServe's v2 REST spec, binary tensor data extension of Triton), every
 * route, binary tensors bit-exact against /v1 predict, and each error in the protocol's shape.
 */

const SYNC_MAX_ROWS = 40;
const IRIS_ROWS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.7, 3.0, 5.2, 2.3],
];
const FASHION_LABELS = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'];

interface Answer {
  status: number;
  headers: Headers;
  bytes: Buffer;
  body: Record<string, unknown>;
}

interface OutputTensor {
  name: string;
  datatype: string;
  shape: number[];
  data?: number[];
  parameters?: { binary_data_size?: number };
}

async function call(
  url: string,
  method: string,
  path: string,
  body?: Buffer | string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  const response = await fetch(`${url}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const bytes = Buffer.from(await response.arrayBuffer());
  const headerLength = response.headers.get('inference-header-content-length');
  const text = bytes.toString('utf8', 0, headerLength === null ? bytes.length : Number(headerLength));
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: response.status, headers: response.headers, bytes, body: parsed };
}

const getJson = (url: string, path: string, headers: Record<string, string> = {}): Promise<Answer> =>
  call(url, 'GET', path, undefined, headers);

const inferJson = (url: string, path: string, body: unknown, headers: Record<string, string> = {}): Promise<Answer> =>
  call(url, 'POST', path, JSON.stringify(body), { 'content-type': 'application/json', ...headers });

/** A binary tensor data request: the JSON header, then the parts, with Inference-Header-Content-Length. */
function binaryRequest(header: unknown, parts: Buffer[]): { body: Buffer; headers: Record<string, string> } {
  const json = Buffer.from(JSON.stringify(header));
  return {
    body: Buffer.concat([json, ...parts]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length) },
  };
}

/** BYTES elements as binary tensor data: each a 4-byte little-endian length, then its bytes. */
function bytesElements(texts: string[]): Buffer {
  return Buffer.concat(
    texts.flatMap((text) => {
      const utf8 = Buffer.from(text, 'utf8');
      const length = Buffer.alloc(4);
      length.writeUInt32LE(utf8.length);
      return [length, utf8];
    }),
  );
}

function float32Bytes(values: number[]): Buffer {
  return Buffer.from(new Float32Array(values).buffer);
}

/** The float32 output a binary answer carries after its JSON header. */
function binaryOutput(answer: Answer): Float32Array {
  const headerLength = Number(answer.headers.get('inference-header-content-length'));
  const tail = answer.bytes.subarray(headerLength);
  return new Float32Array(new Uint8Array(tail).buffer);
}

const outputOf = (answer: Answer): OutputTensor => (answer.body.outputs as OutputTensor[])[0] as OutputTensor;

/** Probabilities of /v1 predict's results as rows of numbers, in label order. */
function nativeProbabilities(results: { probabilities: Record<string, number> }[], labels: string[]): number[][] {
  return results.map((r) => labels.map((l) => r.probabilities[l] as number));
}

describe('Open Inference Protocol v2 over the real queue (api and worker in process, open mode)', () => {
  let stack: Stack;
  let redis: ReturnType<typeof newRedis>;
  let store: JobStore;

  beforeAll(async () => {
    stack = await startStack({ SYNC_MAX_ROWS: String(SYNC_MAX_ROWS), RATE_LIMIT_PER_MINUTE: '0' });
    redis = newRedis();
    store = new JobStore(redis, stack.config.REDIS_PREFIX, stack.config.RESULT_TTL_SECONDS);
  });

  afterAll(async () => {
    await redis.quit();
    await stack.close();
  });

  /** The float32 results a /v1 job stored (what its JSON rounds to 6 digits). */
  async function storedValues(jobId: string): Promise<Float32Array> {
    const record = await store.get(jobId);
    const chunks = await store.readResults(jobId, 0, record?.chunks ?? 0);
    const values = chunks.flatMap((c) => Array.from(c?.values ?? []));
    return new Float32Array(values);
  }

  describe('health and metadata routes', () => {
    it('when liveness, readiness and server metadata are asked, then 200 with the spec’s fields', async () => {
      const live = await getJson(stack.url, '/v2/health/live');
      const ready = await getJson(stack.url, '/v2/health/ready');
      const server = await getJson(stack.url, '/v2');

      expect([live.status, live.body]).toEqual([200, { live: true }]);
      expect([ready.status, ready.body]).toEqual([200, { ready: true }]);
      expect(server.status).toBe(200);
      expect(server.body).toEqual({ name: 'onnx-batch', version: expect.any(String) as string, extensions: ['binary_tensor_data'] });
    });

    it('when model metadata is asked, then it is the spec’s metadata from the manifest (OIP datatypes, -1 dynamic)', async () => {
      const iris = await getJson(stack.url, '/v2/models/iris');
      const irisV2 = await getJson(stack.url, '/v2/models/iris/versions/2');
      const fashion = await getJson(stack.url, '/v2/models/fashion/versions/1');
      const spam = await getJson(stack.url, '/v2/models/spam');
      const diabetes = await getJson(stack.url, '/v2/models/diabetes');

      expect(iris.status).toBe(200);
      expect(iris.body).toEqual({
        name: 'iris',
        versions: ['1', '2', '3'],
        platform: 'onnxruntime_onnx',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
        outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }],
      });
      // Version 2's graph also has an int64 `label`; the worker keeps only the probabilities, so only they are offered.
      expect(irisV2.body.outputs).toEqual([{ name: 'probabilities', datatype: 'FP32', shape: [-1, 3] }]);
      expect(fashion.body).toMatchObject({
        name: 'fashion',
        versions: ['1'],
        inputs: [{ name: 'image', datatype: 'UINT8', shape: [-1, 1, 28, 28] }],
        outputs: [{ name: 'probabilities', datatype: 'FP32', shape: [-1, 10] }],
      });
      expect(spam.body).toMatchObject({ inputs: [{ name: 'text', datatype: 'BYTES', shape: [-1] }] });
      expect(diabetes.body).toMatchObject({
        inputs: [{ name: 'input', datatype: 'FP64', shape: [-1, 10] }],
        outputs: [{ name: 'progression', datatype: 'FP32', shape: [-1, 1] }],
      });
    });

    it('when model readiness is asked, then 200 for a loaded version, 404 {"error"} for an unknown one', async () => {
      const ready = await getJson(stack.url, '/v2/models/iris/ready');
      const version = await getJson(stack.url, '/v2/models/iris/versions/1/ready');
      const unknown = await getJson(stack.url, '/v2/models/iris/versions/9/ready');

      expect([ready.status, ready.body]).toEqual([200, { name: 'iris', version: '2', ready: true }]);
      expect([version.status, version.body]).toEqual([200, { name: 'iris', version: '1', ready: true }]);
      expect(unknown.status).toBe(404);
      expect(unknown.body).toEqual({ error: expect.stringContaining('9') as string });
    });
  });

  describe('the spec’s own examples, on the models served here', () => {
    it('when the KServe v2 REST infer example is sent (id "42", JSON tensors), then its answer has the spec’s shape', async () => {
      // The spec's request: {"id":"42","inputs":[{"name":"input0","shape":[2,2],"datatype":"UINT32","data":[1,2,3,4]}, …],
      // "outputs":[{"name":"output0"}]}, here with iris's input and output.
      const request = {
        id: '42',
        inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: IRIS_ROWS.flat() }],
        outputs: [{ name: 'probabilities' }],
      };
      const answer = await inferJson(stack.url, '/v2/models/iris/versions/1/infer', request);
      const native = await inferJson(stack.url, '/v1/models/iris/versions/1/predict', { inputs: IRIS_ROWS });

      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.body).toMatchObject({ model_name: 'iris', model_version: '1', id: '42' });
      const output = outputOf(answer);
      expect(output).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [2, 3] });
      expect(output.data).toHaveLength(6);
      const labels = ['setosa', 'versicolor', 'virginica'];
      const expected = nativeProbabilities(native.body.results as { probabilities: Record<string, number> }[], labels).flat();
      expect((output.data ?? []).map((v) => Number(formatFloat(v)))).toEqual(expected);
      // JSON data is the stored float32 exactly: /v1 prints 6 digits, this every bit.
      expect(Array.from(new Float32Array(output.data ?? []))).toEqual(Array.from(await storedValues(native.body.jobId as string)));
    });

    it('when the spec’s request names a model that is not served ("mymodel"), then 404 {"error"}', async () => {
      const answer = await inferJson(stack.url, '/v2/models/mymodel/infer', {
        id: '42',
        inputs: [{ name: 'input0', shape: [2, 2], datatype: 'UINT32', data: [1, 2, 3, 4] }],
        outputs: [{ name: 'output0' }],
      });

      expect(answer.status).toBe(404);
      expect(answer.headers.get('content-type')).toMatch(/^application\/json/);
      expect(answer.body).toEqual({ error: expect.stringContaining('mymodel') as string });
    });

    it('when Triton’s binary tensor data example is sent (header, then 4 × n bytes), then the answer is binary too', async () => {
      const { body, headers } = binaryRequest(
        {
          model_name: 'iris',
          inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', parameters: { binary_data_size: 32 } }],
          outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
        },
        [float32Bytes(IRIS_ROWS.flat())],
      );
      const answer = await call(stack.url, 'POST', '/v2/models/iris/infer', body, headers);
      const json = await inferJson(stack.url, '/v2/models/iris/infer', {
        inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: IRIS_ROWS }],
      });

      expect(answer.status).toBe(200);
      expect(answer.headers.get('content-type')).toBe('application/octet-stream');
      expect(outputOf(answer)).toEqual({ name: 'probabilities', datatype: 'FP32', shape: [2, 3], parameters: { binary_data_size: 24 } });
      expect(answer.bytes.length).toBe(Number(answer.headers.get('inference-header-content-length')) + 24);
      expect(Array.from(binaryOutput(answer))).toEqual(Array.from(new Float32Array(outputOf(json).data ?? [])));
    });
  });

  describe('the models', () => {
    it('when fashion images go in and out as binary tensors, then the outputs are bit-exact against /v1 predict', async () => {
      const golden = loadGolden('fashion', '1');
      const images = golden.inputs.slice(0, 5).map((row) => row.image as number[][]);
      const pixels = Buffer.from(images.flatMap((image) => image.flat()));
      const { body, headers } = binaryRequest(
        {
          inputs: [{ name: 'image', shape: [5, 1, 28, 28], datatype: 'UINT8', parameters: { binary_data_size: pixels.length } }],
          parameters: { binary_data_output: true },
        },
        [pixels],
      );

      const answer = await call(stack.url, 'POST', '/v2/models/fashion/infer', body, headers);
      const native = await inferJson(stack.url, '/v1/models/fashion/predict', { inputs: images.map((image) => ({ image })) });

      expect(answer.status).toBe(200);
      expect(outputOf(answer)).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [5, 10] });
      const bits = new Uint32Array(binaryOutput(answer).buffer);
      const nativeBits = new Uint32Array((await storedValues(native.body.jobId as string)).buffer);
      expect(Array.from(bits)).toEqual(Array.from(nativeBits));
      const nativeJson = nativeProbabilities(native.body.results as { probabilities: Record<string, number> }[], FASHION_LABELS);
      expect(Array.from(binaryOutput(answer), (v) => Number(formatFloat(v)))).toEqual(nativeJson.flat());
    });

    it('when fashion images are sent as nested JSON data, then the output equals the binary path’s', async () => {
      const golden = loadGolden('fashion', '1');
      const images = golden.inputs.slice(0, 2).map((row) => [row.image as number[][]]);
      const json = await inferJson(stack.url, '/v2/models/fashion/infer', {
        inputs: [{ name: 'image', shape: [2, 1, 28, 28], datatype: 'UINT8', data: images }],
      });
      const pixels = Buffer.from(images.flat(3));
      const { body, headers } = binaryRequest(
        { inputs: [{ name: 'image', shape: [2, 1, 28, 28], datatype: 'UINT8', parameters: { binary_data_size: 1568 } }] },
        [pixels],
      );
      const binaryIn = await call(stack.url, 'POST', '/v2/models/fashion/infer', body, headers);

      expect(json.status).toBe(200);
      expect(binaryIn.headers.get('content-type')).toMatch(/^application\/json/); // binary in, JSON out unless asked
      expect(outputOf(json).data).toEqual(outputOf(binaryIn).data);
    });

    it('when spam texts are sent as BYTES (JSON strings and length-prefixed binary), then both equal /v1 predict', async () => {
      const texts = [
        'Cheap meds!!! Click here to claim your FREE prize now',
        'Re: meeting notes\n\nSee you at the standup tomorrow.',
        'ünïcödé ✓',
      ];
      const json = await inferJson(stack.url, '/v2/models/spam/infer', {
        inputs: [{ name: 'text', shape: [3], datatype: 'BYTES', data: texts }],
      });
      const part = bytesElements(texts);
      const { body, headers } = binaryRequest(
        {
          inputs: [{ name: 'text', shape: [3], datatype: 'BYTES', parameters: { binary_data_size: part.length } }],
          outputs: [{ name: 'probabilities', parameters: { binary_data: true } }],
        },
        [part],
      );
      const binary = await call(stack.url, 'POST', '/v2/models/spam/infer', body, headers);
      const native = await inferJson(stack.url, '/v1/models/spam/predict', { inputs: texts.map((text) => ({ text })) });

      expect(json.status).toBe(200);
      expect(outputOf(json)).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [3, 2] });
      expect(Array.from(binaryOutput(binary))).toEqual(Array.from(new Float32Array(outputOf(json).data ?? [])));
      expect(Array.from(binaryOutput(binary))).toEqual(Array.from(await storedValues(native.body.jobId as string)));
    });

    it('when diabetes rows are sent as FP64, then the regression output is [N, 1] and equals /v1 predict', async () => {
      const golden = loadGolden('diabetes', '1');
      const features = ['age', 'sex', 'bmi', 'bp', 'tc', 'ldl', 'hdl', 'tch', 'ltg', 'glu'];
      const rows = golden.inputs.slice(0, 3).map((row) => features.map((f) => row[f] as number));
      const answer = await inferJson(stack.url, '/v2/models/diabetes/infer', {
        inputs: [{ name: 'input', shape: [3, 10], datatype: 'FP64', data: rows }],
      });
      const native = await inferJson(stack.url, '/v1/models/diabetes/predict', { inputs: rows });

      expect(answer.status).toBe(200);
      expect(outputOf(answer)).toMatchObject({ name: 'progression', datatype: 'FP32', shape: [3, 1] });
      expect(Array.from(new Float32Array(outputOf(answer).data ?? []))).toEqual(
        Array.from(await storedValues(native.body.jobId as string)),
      );
    });

    it('when the README’s curl example is sent, then it answers as the README shows', async () => {
      const answer = await inferJson(stack.url, '/v2/models/iris/infer', {
        id: '42',
        inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
      });

      expect(answer.status).toBe(200);
      expect(Object.keys(answer.body)).toEqual(['model_name', 'model_version', 'id', 'parameters', 'outputs']);
      expect(answer.body).toMatchObject({ model_name: 'iris', model_version: '2', id: '42', parameters: { job_id: expect.any(String) } });
      expect(outputOf(answer)).toMatchObject({ name: 'probabilities', datatype: 'FP32', shape: [1, 3] });
      expect(Math.max(...(outputOf(answer).data ?? []))).toBe(outputOf(answer).data?.[0]); // setosa
    });

    it('when the request is gzip-compressed, then it is inflated and runs', async () => {
      const body = gzipSync(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: IRIS_ROWS[0] }] }));
      const answer = await call(stack.url, 'POST', '/v2/models/iris/infer', body, {
        'content-type': 'application/json',
        'content-encoding': 'gzip',
      });

      expect(answer.status).toBe(200);
      expect(outputOf(answer).shape).toEqual([1, 3]);
    });

    it('when iris rows run through /v2, then they are an ordinary job of the same queue (its id in parameters.job_id)', async () => {
      const answer = await inferJson(stack.url, '/v2/models/iris/infer', {
        inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [IRIS_ROWS[0]] }],
      });
      const jobId = (answer.body.parameters as { job_id: string }).job_id;
      const job = await getJson(stack.url, `/v1/batch-result/${jobId}`);

      expect(job.status).toBe(200);
      expect(job.body).toMatchObject({ status: 'completed', model: { name: 'iris', version: '2' }, progress: { done: 1, total: 1 } });
    });
  });

  describe('errors, each in the protocol’s shape', () => {
    const iris = (input: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2], ...input }],
      ...extra,
    });

    async function expectError(answer: Promise<Answer>, status: number, message: RegExp): Promise<void> {
      const got = await answer;
      expect({ status: got.status, body: got.body }).toEqual({ status, body: { error: expect.stringMatching(message) as string } });
      expect(got.headers.get('content-type')).toMatch(/^application\/json/);
    }

    it('when the model or version is unknown, then 404', async () => {
      await expectError(inferJson(stack.url, '/v2/models/nope/infer', iris({})), 404, /nope/);
      await expectError(inferJson(stack.url, '/v2/models/iris/versions/7/infer', iris({})), 404, /7/);
      await expectError(getJson(stack.url, '/v2/models/nope'), 404, /nope/);
    });

    it('when a /v2 route does not exist or the method is wrong, then 404 or 405, not problem+json', async () => {
      await expectError(getJson(stack.url, '/v2/repository/index'), 404, /no route/);
      await expectError(call(stack.url, 'DELETE', '/v2/models/iris/infer'), 405, /DELETE/);
    });

    it('when the datatype, shape, data count or input name is wrong, then 400 naming it', async () => {
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ datatype: 'FP64' })), 400, /datatype FP64.*FP32/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ datatype: 'FLOAT' })), 400, /datatype FLOAT/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ shape: [1, 5] })), 400, /shape \[1,5\]/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ shape: [4] })), 400, /shape \[4\]/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ shape: [2, 4] })), 400, /4 elements.*needs 8/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ data: [1, 2, 3, 4, 5] })), 400, /more than 4/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ data: [1, 2, 'x', 4] })), 400, /element 2.*finite numbers/);
      await expectError(
        inferJson(stack.url, '/v2/models/iris/infer', iris({ name: 'input0' })),
        400,
        /unexpected inference input 'input0'/,
      );
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ data: undefined })), 400, /neither data nor binary_data_size/);
      await expectError(
        inferJson(stack.url, '/v2/models/iris/infer', iris({}, { outputs: [{ name: 'label' }] })),
        400,
        /unexpected inference output 'label'/,
      );
    });

    it('when a row is out of the manifest’s bounds, then 400 from the same validator as /v1', async () => {
      const answer = inferJson(stack.url, '/v2/models/iris/infer', iris({ data: [5.1, 3.5, 1.4, 99] }));
      await expectError(answer, 400, /row 0: field 'petal_width' must be <= 10/);
    });

    it('when the body is not JSON or not an infer request, then 400', async () => {
      await expectError(
        call(stack.url, 'POST', '/v2/models/iris/infer', '{"inputs": [', { 'content-type': 'application/json' }),
        400,
        /not valid JSON/,
      );
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', { inputs: [] }), 400, /inputs/);
    });

    it('when data is nested deeper than its shape (a stack-exhaustion attempt), then 400', async () => {
      const depth = 50_000;
      const deep = `${'['.repeat(depth)}5.1,3.5,1.4,0.2${']'.repeat(depth)}`;
      const body = `{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","data":${deep}}]}`;
      const answer = call(stack.url, 'POST', '/v2/models/iris/infer', body, { 'content-type': 'application/json' });
      await expectError(answer, 400, /nested deeper than its shape's 2 dimensions/);
    });

    it('when shapes are huge or negative, then 413 or 400 before anything is allocated or queued', async () => {
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ shape: [1e15, 4] })), 413, /at most 40/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ shape: [1, 4e9] })), 400, /shape/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ shape: [-1, 4] })), 400, /shape/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ shape: [0, 4], data: [] })), 400, /no rows/);
      await expectError(inferJson(stack.url, '/v2/models/iris/infer', iris({ shape: [1, 4, 1] })), 400, /shape/);
    });

    it('when binary data is truncated, too long, mis-sized or its header length lies, then 400', async () => {
      const header = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }] };
      const bytes = float32Bytes(IRIS_ROWS[0] ?? []);
      const truncated = binaryRequest(header, [bytes.subarray(0, 10)]);
      const trailing = binaryRequest(header, [bytes, Buffer.from([1, 2, 3])]);
      const misSized = binaryRequest({ inputs: [{ ...header.inputs[0], parameters: { binary_data_size: 12 } }] }, [bytes.subarray(0, 12)]);
      const negative = binaryRequest({ inputs: [{ ...header.inputs[0], parameters: { binary_data_size: -16 } }] }, [bytes]);
      const enormous = binaryRequest({ inputs: [{ ...header.inputs[0], parameters: { binary_data_size: 1e15 } }] }, [bytes]);
      const post = (r: { body: Buffer; headers: Record<string, string> }, headers: Record<string, string> = {}): Promise<Answer> =>
        call(stack.url, 'POST', '/v2/models/iris/infer', r.body, { ...r.headers, ...headers });

      await expectError(post(truncated), 400, /runs past the end of the body/);
      await expectError(post(trailing), 400, /3 bytes after/);
      await expectError(post(misSized), 400, /binary_data_size is 12 bytes.*need 16/);
      await expectError(post(negative), 400, /binary_data_size/);
      await expectError(post(enormous), 400, /runs past the end/);
      await expectError(post(truncated, { 'inference-header-content-length': '100000' }), 400, /Inference-Header-Content-Length is 100000/);
      await expectError(post(truncated, { 'inference-header-content-length': '-5' }), 400, /whole number/);
      const jsonOnly = inferJson(stack.url, '/v2/models/iris/infer', header);
      await expectError(jsonOnly, 400, /binary_data_size but the request has no Inference-Header-Content-Length/);
      const noHeader = { body: trailing.body, headers: { 'content-type': 'application/octet-stream' } };
      await expectError(post(noHeader), 400, /not valid JSON/);
    });

    it('when binary BYTES are cut in a length prefix, overrun, too many or not UTF-8, then 400', async () => {
      const header = (size: number, rows = 1): unknown => ({
        inputs: [{ name: 'text', shape: [rows], datatype: 'BYTES', parameters: { binary_data_size: size } }],
      });
      const post = (size: number, part: Buffer, rows = 1): Promise<Answer> => {
        const r = binaryRequest(header(size, rows), [part]);
        return call(stack.url, 'POST', '/v2/models/spam/infer', r.body, r.headers);
      };
      const two = bytesElements(['a', 'b']);
      const lying = Buffer.from([0xff, 0xff, 0xff, 0x7f, 0x61]);
      const badUtf8 = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from([0xc3, 0x28])]);

      await expectError(post(3, two.subarray(0, 3)), 400, /cut inside its length prefix/);
      await expectError(post(5, lying), 400, /longer than the data left/);
      await expectError(post(two.length, two), 400, /more than the 1 elements/);
      await expectError(post(two.length, two, 3), 400, /holds 2 elements, its shape 3/);
      await expectError(post(badUtf8.length, badUtf8), 400, /not valid UTF-8/);
    });

    it('when binary FP32 data holds NaN, then 400: rows take finite numbers only', async () => {
      const r = binaryRequest({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', parameters: { binary_data_size: 16 } }] }, [
        float32Bytes([5.1, Number.NaN, 1.4, 0.2]),
      ]);
      await expectError(call(stack.url, 'POST', '/v2/models/iris/infer', r.body, r.headers), 400, /element 1 is NaN/);
    });
  });
});

describe('Open Inference Protocol v2 with keys and a rate limit (no worker)', () => {
  const WRITER = 'writer-key-0123456789';
  const READER = 'reader-key-0123456789';
  const LIMITED = 'limited-key-012345678';
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(
      {
        API_KEYS: `acme:${WRITER},acme:${READER}:read,other:${LIMITED}:read`,
        RATE_LIMIT_PER_MINUTE: '3',
        SYNC_TIMEOUT_MS: '300',
        MAX_BODY_BYTES: '4096',
      },
      false,
    );
  });

  afterAll(async () => {
    await stack.close();
  });

  const request = { inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }] };

  it('when no key is sent, then health and server metadata answer, model routes and infer are 401 {"error"}', async () => {
    const live = await getJson(stack.url, '/v2/health/live');
    const ready = await getJson(stack.url, '/v2/health/ready');
    const server = await getJson(stack.url, '/v2');
    const metadata = await getJson(stack.url, '/v2/models/iris');
    const infer = await inferJson(stack.url, '/v2/models/iris/infer', request);

    expect([live.status, ready.status, server.status]).toEqual([200, 200, 200]);
    expect([metadata.status, metadata.body]).toEqual([401, { error: expect.stringContaining('API key') as string }]);
    expect([infer.status, infer.body]).toEqual([401, { error: expect.stringContaining('API key') as string }]);
  });

  it('when a read-only key infers, then 403 {"error"}; it may read metadata', async () => {
    const metadata = await getJson(stack.url, '/v2/models/iris', { authorization: `Bearer ${READER}` });
    const infer = await inferJson(stack.url, '/v2/models/iris/infer', request, { authorization: `Bearer ${READER}` });
    const badKey = await getJson(stack.url, '/v2/models/iris', { 'x-api-key': 'not-a-key-0123456789' });

    expect(metadata.status).toBe(200);
    expect([infer.status, infer.body]).toEqual([403, { error: "this API key lacks the 'submit' role" }]);
    expect([badKey.status, badKey.body]).toEqual([401, { error: 'the API key is not valid' }]);
  });

  it('when a submit key infers and no worker runs it in time, then 504 {"error"} naming the job to poll', async () => {
    const answer = await inferJson(stack.url, '/v2/models/iris/infer', request, { authorization: `Bearer ${WRITER}` });

    expect(answer.status).toBe(504);
    expect(answer.body).toEqual({
      error: expect.stringMatching(/did not finish within 300 ms; poll \/v1\/batch-result\/[0-9a-f-]{36}/) as string,
    });
  });

  it('when the body is larger than MAX_BODY_BYTES or its Content-Encoding unknown, then 413 or 415 {"error"}', async () => {
    const headers = { authorization: `Bearer ${WRITER}`, 'content-type': 'application/json' };
    const large = await call(stack.url, 'POST', '/v2/models/iris/infer', JSON.stringify({ ...request, id: 'x'.repeat(5000) }), headers);
    const brotli = await call(stack.url, 'POST', '/v2/models/iris/infer', JSON.stringify(request), {
      ...headers,
      'content-encoding': 'br',
    });

    expect([large.status, large.body]).toEqual([413, { error: expect.stringContaining('4096') as string }]);
    expect([brotli.status, brotli.body]).toEqual([415, { error: expect.stringContaining("'br'") as string }]);
  });

  it('when a key passes its rate limit, then 429 {"error"} with Retry-After', async () => {
    const headers = { 'x-api-key': LIMITED };
    for (let i = 0; i < 3; i++) expect((await getJson(stack.url, '/v2/models/iris/ready', headers)).status).toBe(200);
    const refused = await getJson(stack.url, '/v2/models/iris', headers);

    expect(refused.status).toBe(429);
    expect(refused.body).toEqual({ error: expect.stringMatching(/more than 3 requests a minute/) as string });
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
  });
});

describe('Open Inference Protocol v2 when Redis is full or gone (a private redis-server)', () => {
  let redis: PrivateRedis;
  let stack: Stack;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    stack = await startStack(
      { REDIS_URL: redis.url, RATE_LIMIT_PER_MINUTE: '0', REDIS_MEMORY_HIGH_WATERMARK: '1', REDIS_MEMORY_CHECK_INTERVAL_MS: '600000' },
      false,
    );
    await eventually('the API has connected to Redis', async () => (await getJson(stack.url, '/v2/health/ready')).status === 200);
  });

  afterAll(async () => {
    await stack.close();
    await redis.destroy();
  });

  it('when Redis refuses writes, then infer is 507 {"error"}; when Redis is gone, not ready: 503 until it is back', async () => {
    const used = await redis.usedMemory();
    await redis.client().config('SET', 'maxmemory', String(Math.max(1, used - 1_000_000)));
    const refused = await inferJson(stack.url, '/v2/models/iris/infer', {
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
    });
    await redis.client().config('SET', 'maxmemory', '0');
    await redis.stop();
    const notReady = await getJson(stack.url, '/v2/health/ready');
    await redis.restart();
    await eventually('/v2/health/ready answers 200 again', async () => (await getJson(stack.url, '/v2/health/ready')).status === 200);

    expect(refused.status).toBe(507);
    expect(refused.body).toEqual({ error: expect.any(String) as string });
    expect(notReady.status).toBe(503);
    expect(notReady.body).toEqual({ ready: false, error: expect.stringMatching(/not ready: .*redis/) as string });
  });
});

describe('Open Inference Protocol v2 on a model whose results are per-row JSON (result kind tensor; no worker)', () => {
  let models: ModelsCopy;
  let stack: Stack;

  beforeAll(async () => {
    models = copyModels(['iris/1']);
    const version = addVersionCopy(models, 'iris', '1', '9', (manifest) => {
      manifest.task = 'tensor';
      manifest.result = { kind: 'tensor', outputs: ['probabilities'] };
      delete manifest.metrics;
      delete manifest.evaluation;
    });
    rmSync(path.join(version, 'baseline.json')); // a tensor model has no prediction statistics
    stack = await startStack({ MODELS_DIR: models.dir, RATE_LIMIT_PER_MINUTE: '0' }, false);
  });

  afterAll(async () => {
    await stack.close();
    models.remove();
  });

  it('when its metadata is asked, then it lists no outputs; when it is asked to infer, then 400 says why, nothing queued', async () => {
    const metadata = await getJson(stack.url, '/v2/models/iris/versions/9');
    const infer = await inferJson(stack.url, '/v2/models/iris/versions/9/infer', {
      inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
    });
    const jobs = await getJson(stack.url, '/v1/jobs');

    expect(metadata.body).toMatchObject({ name: 'iris', inputs: [{ name: 'input', datatype: 'FP32' }], outputs: [] });
    expect([infer.status, infer.body]).toEqual([400, { error: expect.stringContaining("result kind 'tensor'") as string }]);
    expect(jobs.body.data).toEqual([]);
  });
});

describe('Open Inference Protocol v2 when the worker cannot run rows (corrupt staged inputs)', () => {
  let stack: Stack;
  let redis: ReturnType<typeof newRedis>;

  beforeAll(async () => {
    stack = await startStack({ CHUNK_SIZE: '2', JOB_ATTEMPTS: '1', SYNC_TIMEOUT_MS: '30000', RATE_LIMIT_PER_MINUTE: '0' }, false);
    redis = newRedis();
  });

  afterAll(async () => {
    await redis.quit();
    await stack.close();
  });

  /** Sends an infer, corrupts chunk `chunk` of its job before any worker runs, then runs a worker until it answers. */
  async function inferWithCorruptChunk(rows: number[][], chunk: number): Promise<{ answer: Answer; jobId: string }> {
    const pending = inferJson(stack.url, '/v2/models/iris/infer', {
      inputs: [{ name: 'input', shape: [rows.length, 4], datatype: 'FP32', data: rows }],
    });
    let jobId = '';
    await eventually('the infer job is queued', async () => {
      const jobs = (await getJson(stack.url, '/v1/jobs')).body.data as { jobId: string; status: string }[];
      jobId = jobs.find((j) => j.status === 'queued')?.jobId ?? '';
      return jobId !== '';
    });
    await redis.set(`${jobKey(stack.config.REDIS_PREFIX, jobId)}:in:${chunk}`, 'garbage');
    const worker = await startWorkerService(stack.config, capturedLogger().logger); // the failed chunks' errors are expected
    try {
      return { answer: await pending, jobId };
    } finally {
      await worker.close();
    }
  }

  it('when one chunk of the job fails, then 500 {"error"} names the first failed row (the protocol has no per-row errors)', async () => {
    const { answer } = await inferWithCorruptChunk([...IRIS_ROWS, ...IRIS_ROWS], 1);

    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({ error: expect.stringMatching(/^row 2: /) as string });
  });

  it('when the only chunk fails, then the job fails and 500 {"error"} names the job and why', async () => {
    const { answer, jobId } = await inferWithCorruptChunk([IRIS_ROWS[0] ?? []], 0);

    expect(answer.status).toBe(500);
    expect(answer.body).toEqual({ error: expect.stringContaining(`the inference job ${jobId} failed: `) as string });
  });
});
