import { execFile } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import os from 'node:os';
import path from 'node:path';
import OpenAI, { AuthenticationError, BadRequestError, ConflictError, NotFoundError, PermissionDeniedError } from 'openai';
import { dropPrefix, newRedis, ROOT, testEnv } from '../helpers/env';
import { postJson } from '../helpers/http';
import { spawnApi, spawnWorker, type Spawned } from '../helpers/processes';

// The official `openai` npm client, as its users run it, against spawned api and worker
// processes: the whole batch flow, embeddings, and its typed errors carrying our messages.

const KEY = 'sdk-tenant-key-0123456789abcdef';
const READER = 'sdk-reader-key-0123456789abcdef';
const IRIS = '/v1/models/iris/versions/2/predict';

function irisRow(i: number): number[] {
  return [4.3 + ((i * 7) % 36) / 10, 2.0 + ((i * 3) % 24) / 10, 1.0 + ((i * 11) % 59) / 10, 0.1 + ((i * 5) % 25) / 10];
}

describe('end to end: the official openai client drives batches, files and embeddings', () => {
  const env = testEnv({ API_KEYS: `sdk:${KEY},sdk:${READER}:read`, RATE_LIMIT_PER_MINUTE: '100000' });
  let api: Spawned;
  let worker: Spawned;
  let url: string;
  let client: OpenAI;
  let dir: string;

  beforeAll(async () => {
    [{ proc: api, url }, worker] = await Promise.all([spawnApi(env), spawnWorker(env)]);
    client = new OpenAI({ apiKey: KEY, baseURL: `${url}/v1`, maxRetries: 0 });
    dir = mkdtempSync(path.join(os.tmpdir(), 'sdk-'));
  });

  afterAll(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    rmSync(dir, { recursive: true, force: true });
    const redis = newRedis();
    await dropPrefix(redis, env.REDIS_PREFIX);
    await redis.quit();
  });

  const jsonlFile = (name: string, lines: unknown[]): string => {
    const file = path.join(dir, name);
    writeFileSync(file, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`);
    return file;
  };

  it(
    'when a JSONL stream is uploaded with files.create and run with batches.create, then retrieve reaches completed and ' +
      'files.content gives every prediction exactly as the native API answers the same rows, failures in the error file',
    async () => {
      const rows = Array.from({ length: 300 }, (_, i) => irisRow(i));
      const lines: unknown[] = rows.map((row, i) => ({ custom_id: `row-${i}`, method: 'POST', url: IRIS, body: { inputs: [row] } }));
      lines.splice(150, 0, { custom_id: 'bad', method: 'POST', url: IRIS, body: { inputs: [[1, 2, 3]] } });
      const uploaded = await client.files.create({ file: createReadStream(jsonlFile('iris.jsonl', lines)), purpose: 'batch' });
      expect(uploaded).toMatchObject({ object: 'file', purpose: 'batch', filename: 'iris.jsonl' });

      let batch = await client.batches.create({
        input_file_id: uploaded.id,
        endpoint: IRIS as '/v1/embeddings',
        completion_window: '24h',
        metadata: { run: 'e2e' },
      });
      for (let i = 0; i < 600 && !['completed', 'failed', 'cancelled'].includes(batch.status); i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        batch = await client.batches.retrieve(batch.id);
      }

      expect(batch).toMatchObject({
        status: 'completed',
        metadata: { run: 'e2e' },
        request_counts: { total: 301, completed: 300, failed: 1 },
      });
      const output = (await (await client.files.content(String(batch.output_file_id))).text()).trim().split('\n');
      const parsed = output.map(
        (l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: { results: unknown[] } } },
      );
      expect(parsed.map((p) => p.custom_id)).toEqual(rows.map((_, i) => `row-${i}`));
      const native = await postJson(
        `${url}/v1/batch-predict`,
        { model: 'iris', version: '2', inputs: rows },
        { authorization: `Bearer ${KEY}` },
      );
      const job = await fetch(`${url}/v1/batch-result/${String(native.body.jobId)}?wait=30`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      const nativeResults = ((await job.json()) as { results: unknown[] }).results;
      parsed.forEach((p, i) => {
        expect(p.response.status_code).toBe(200);
        expect(p.response.body.results[0]).toEqual(nativeResults[i]);
      });
      const errors = (await (await client.files.content(String(batch.error_file_id))).text()).trim().split('\n');
      expect(errors.map((l) => (JSON.parse(l) as { custom_id: string }).custom_id)).toEqual(['bad']);

      const listed = [];
      for await (const b of client.batches.list({ limit: 1 })) listed.push(b.id);
      expect(listed).toContain(batch.id);
      const files = await client.files.list();
      expect(files.data.map((f) => f.id)).toContain(uploaded.id);
      expect(await client.files.retrieve(String(batch.output_file_id))).toMatchObject({ purpose: 'batch_output' });
      expect(await client.files.delete(uploaded.id)).toMatchObject({ id: uploaded.id, deleted: true });
    },
  );

  it('when a larger batch gets batches.cancel, then it ends cancelled; cancelling again is a ConflictError', async () => {
    const lines = Array.from({ length: 50_000 }, (_, i) => ({
      custom_id: `c${i}`,
      method: 'POST',
      url: IRIS,
      body: { inputs: [irisRow(i)] },
    }));
    const uploaded = await client.files.create({ file: createReadStream(jsonlFile('big.jsonl', lines)), purpose: 'batch' });
    const batch = await client.batches.create({ input_file_id: uploaded.id, endpoint: IRIS as '/v1/embeddings', completion_window: '24h' });

    // 50 000 rows take the worker a while: the cancel meets the batch in progress, and its rows that ran are in the output file.
    const cancelled = await client.batches.cancel(batch.id);

    expect(cancelled).toMatchObject({ status: 'cancelled', request_counts: { total: 50_000 } });
    expect(typeof cancelled.cancelled_at).toBe('number');
    await expect(client.batches.cancel(batch.id)).rejects.toBeInstanceOf(ConflictError);
    const after = await client.batches.retrieve(batch.id);
    expect(after.status).toBe('cancelled');
    const ran = after.request_counts?.completed ?? 0;
    expect(ran).toBeLessThan(50_000);
    if (ran > 0) {
      const output = (await (await client.files.content(String(after.output_file_id))).text()).trim().split('\n');
      expect(output).toHaveLength(ran);
    }
  });

  it('when embeddings.create is called, then the vectors equal the batch path and the native endpoint, float and base64', async () => {
    const texts = ['win a free cruise now', 'meeting moved to 3pm'];
    const floats = await client.embeddings.create({ model: 'textembed', input: texts, encoding_format: 'float' });
    // The client's default asks for base64 and decodes it to floats.
    const decoded = await client.embeddings.create({ model: 'textembed', input: texts });

    expect(floats.data.map((d) => d.index)).toEqual([0, 1]);
    expect(floats.data[0]?.embedding).toHaveLength(64);
    decoded.data.forEach((d, i) => d.embedding.forEach((v, k) => expect(v).toBeCloseTo(floats.data[i]?.embedding[k] ?? NaN, 6)));
    expect(floats.usage.prompt_tokens).toBeGreaterThan(0);

    const lines = texts.map((input, i) => ({
      custom_id: `e${i}`,
      method: 'POST',
      url: '/v1/embeddings',
      body: { model: 'textembed', input },
    }));
    const uploaded = await client.files.create({ file: createReadStream(jsonlFile('embed.jsonl', lines)), purpose: 'batch' });
    let batch = await client.batches.create({ input_file_id: uploaded.id, endpoint: '/v1/embeddings', completion_window: '24h' });
    for (let i = 0; i < 300 && batch.status !== 'completed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      batch = await client.batches.retrieve(batch.id);
    }
    const output = (await (await client.files.content(String(batch.output_file_id))).text()).trim().split('\n');
    output.forEach((l, i) =>
      expect((JSON.parse(l) as { response: { body: { data: { embedding: number[] }[] } } }).response.body.data[0]?.embedding).toEqual(
        floats.data[i]?.embedding,
      ),
    );
  });

  it("when the README's OpenAI SDK example and its curl lines are run as written, then they upload, batch and embed", async () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('### Use it from the OpenAI SDK'));
    const snippet = (/```ts\n([\s\S]*?)```/.exec(section)?.[1] ?? '').replaceAll('http://127.0.0.1:8080', url);
    const curls = (/```sh\n([\s\S]*?)```/.exec(section)?.[1] ?? '')
      .replace(/\\\n\s*/g, '')
      .trim()
      .split('\n');
    // Inside the repository, so that `import 'openai'` resolves as in a user's project.
    const work = path.join(ROOT, 'test-artifacts', `readme-sdk-${process.pid}`);
    mkdirSync(work, { recursive: true });
    writeFileSync(
      path.join(work, 'requests.jsonl'),
      ['spam spam spam', 'see you at lunch']
        .map((input, i) =>
          JSON.stringify({ custom_id: `r${i}`, method: 'POST', url: '/v1/embeddings', body: { model: 'textembed', input } }),
        )
        .join('\n'),
    );
    const run = promisify(execFile);
    const script =
      `${snippet}\nlet b = batch;\n` +
      "while (b.status !== 'completed') { await new Promise((r) => setTimeout(r, 100)); b = await client.batches.retrieve(batch.id); }\n" +
      'console.log(await (await client.files.content(b.output_file_id)).text());';
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
      cwd: work,
      env: { ...process.env, ONNX_BATCH_KEY: KEY },
    });
    expect(
      stdout
        .trim()
        .split('\n')
        .map((l) => (JSON.parse(l) as { custom_id: string }).custom_id),
    ).toEqual(['r0', 'r1']);

    const curl = async (line: string, fileId = ''): Promise<Record<string, unknown>> => {
      const command = line.replaceAll('localhost:8080', url.replace('http://', '')).replaceAll('file-…', fileId).replaceAll('$KEY', KEY);
      const { stdout: out } = await run('bash', ['-c', command], { cwd: work });
      return JSON.parse(out) as Record<string, unknown>;
    };
    expect(curls).toHaveLength(3);
    const uploaded = await curl(curls[0] ?? '');
    expect(uploaded).toMatchObject({ object: 'file', purpose: 'batch' });
    expect(await curl(curls[1] ?? '', String(uploaded.id))).toMatchObject({
      object: 'batch',
      endpoint: '/v1/embeddings',
      request_counts: { total: 2 },
    });
    expect(await curl(curls[2] ?? '')).toMatchObject({ object: 'list', model: 'textembed', data: [{ index: 0 }, { index: 1 }] });
    rmSync(work, { recursive: true, force: true });
  });

  it('when the client makes mistakes, then it raises its typed errors with our messages', async () => {
    const uploaded = await client.files.create({
      file: createReadStream(jsonlFile('one.jsonl', [{ custom_id: 'a', method: 'POST', url: IRIS, body: { inputs: [irisRow(0)] } }])),
      purpose: 'batch',
    });
    await expect(
      client.batches.create({ input_file_id: uploaded.id, endpoint: IRIS as '/v1/embeddings', completion_window: '1h' as '24h' }),
    ).rejects.toMatchObject({
      constructor: BadRequestError,
      param: 'completion_window',
      message: expect.stringContaining('must be "24h"'),
    });
    await expect(client.batches.retrieve('batch_0123456789abcdef0123456789abcdef')).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.files.content('file-00000000000000000000000000000000')).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.embeddings.create({ model: 'iris', input: 'x' })).rejects.toMatchObject({
      constructor: BadRequestError,
      param: 'model',
    });
    await expect(client.embeddings.create({ model: 'nope', input: 'x' })).rejects.toMatchObject({
      constructor: NotFoundError,
      code: 'model_not_found',
    });
    const stranger = new OpenAI({ apiKey: 'not-a-key-0123456789abcdef', baseURL: `${url}/v1`, maxRetries: 0 });
    await expect(stranger.batches.list()).rejects.toBeInstanceOf(AuthenticationError);
    const reader = new OpenAI({ apiKey: READER, baseURL: `${url}/v1`, maxRetries: 0 });
    await expect(
      reader.batches.create({ input_file_id: uploaded.id, endpoint: IRIS as '/v1/embeddings', completion_window: '24h' }),
    ).rejects.toBeInstanceOf(PermissionDeniedError);
    expect((await reader.batches.list()).data.length).toBeGreaterThan(0);
  });
});
