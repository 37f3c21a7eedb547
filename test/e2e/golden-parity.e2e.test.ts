import { CONFIG_VARIABLES, JobStore } from '@onnx-batch/shared';
import { dropPrefix, newRedis, testEnv } from '../helpers/env';
import { loadGolden } from '../helpers/golden';
import { goldenDeviations } from '../helpers/golden-parity';
import { postJson, waitForJob } from '../helpers/http';
import { discoverModelVersions, readManifest, withBase64Tensors } from '../helpers/model-files';
import { spawnApi, spawnWorker, type Spawned } from '../helpers/processes';

/** Every model version in models/: a model added there is covered without touching this file. */
const MODEL_VERSIONS = discoverModelVersions().map(({ name, version }) => ({ name, version, id: `${name}@${version}` }));
/** Versions with a byte tensor feature a client may also send as base64. */
const BASE64_VERSIONS = MODEL_VERSIONS.filter(({ name, version }) =>
  readManifest(name, version).features.some((f) => f.type === 'tensor' && f.base64 === 'uint8'),
);

interface JobAnswer {
  status: string;
  model: { name: string; version: string };
  progress: { done: number; total: number; failed: number };
  results: unknown[] | null;
}

describe('golden parity: the model repository scan', () => {
  it('when models/ is scanned, then it finds at least the shipped versions iris 1, 2 and 3, spam 1, fashion 1 and diabetes 1', () => {
    expect(MODEL_VERSIONS.map((v) => v.id)).toEqual(
      expect.arrayContaining(['diabetes@1', 'fashion@1', 'iris@1', 'iris@2', 'iris@3', 'spam@1']),
    );
    expect(BASE64_VERSIONS.map((v) => v.id)).toEqual(expect.arrayContaining(['fashion@1']));
  });
});

const CHUNKINGS: { chunking: string; overrides: Record<string, string>; chunkSize: number }[] = [
  { chunking: 'the default chunk size', overrides: {}, chunkSize: CONFIG_VARIABLES.CHUNK_SIZE.default },
  { chunking: 'CHUNK_SIZE=7 (golden rows span many chunks)', overrides: { CHUNK_SIZE: '7' }, chunkSize: 7 },
];

describe.each(CHUNKINGS)('golden parity end to end: real api and worker processes, $chunking', ({ overrides, chunkSize }) => {
  const env = testEnv(overrides);
  const redis = newRedis();
  const store = new JobStore(redis, env.REDIS_PREFIX, 3600);
  let api: Spawned;
  let worker: Spawned;
  let url: string;

  beforeAll(async () => {
    [{ proc: api, url }, worker] = await Promise.all([spawnApi(env), spawnWorker(env)]);
  });

  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await dropPrefix(redis, env.REDIS_PREFIX);
    await redis.quit();
  });

  async function run(model: string, version: string, inputs: unknown[]): Promise<{ job: JobAnswer; chunks: number }> {
    const submitted = await postJson(`${url}/v1/batch-predict`, { model, version, inputs });
    expect(submitted.status).toBe(202);
    const jobId = String(submitted.body.jobId);
    const job = (await waitForJob(url, jobId)) as unknown as JobAnswer;
    const record = await store.get(jobId);
    return { job, chunks: record?.chunks ?? -1 };
  }

  it.each(MODEL_VERSIONS)(
    'when every golden row of $id is submitted, then the job completes in input order with every float within 1e-5 (relative beyond ' +
      '1) and every label exact',
    async ({ name, version }) => {
      const manifest = readManifest(name, version);
      const golden = loadGolden(name, version);
      const rows = golden.inputs.length;

      const { job, chunks } = await run(name, version, golden.inputs);

      expect(job.status).toBe('completed');
      expect(job.model).toEqual({ name, version, route: 'pinned' });
      expect(job.progress).toEqual({ done: rows, total: rows, failed: 0 });
      expect(chunks).toBe(Math.ceil(rows / (manifest.chunkSize ?? chunkSize)));
      expect(job.results).toHaveLength(rows);
      expect(goldenDeviations(manifest, golden, job.results ?? [])).toEqual([]);
    },
  );

  it.each(BASE64_VERSIONS)(
    'when the golden images of $id are sent as base64 of their raw bytes, alone or mixed with arrays, then the results are the ' +
      'same as for arrays',
    async ({ name, version }) => {
      const manifest = readManifest(name, version);
      const golden = loadGolden(name, version);
      const base64Rows = golden.inputs.map((row) => withBase64Tensors(manifest, row));
      const mixedRows = golden.inputs.map((row, i) => (i % 2 === 0 ? withBase64Tensors(manifest, row) : row));

      const [asArrays, asBase64, mixed] = await Promise.all([
        run(name, version, golden.inputs),
        run(name, version, base64Rows),
        run(name, version, mixedRows),
      ]);

      expect(asBase64.job.status).toBe('completed');
      expect(mixed.job.status).toBe('completed');
      expect(goldenDeviations(manifest, golden, asBase64.job.results ?? [])).toEqual([]);
      expect(asBase64.job.results).toEqual(asArrays.job.results);
      expect(mixed.job.results).toEqual(asArrays.job.results);
    },
  );
});
