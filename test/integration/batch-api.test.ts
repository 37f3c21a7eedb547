import type { Redis } from 'ioredis';
import { newRedis, keysWithPrefix } from '../helpers/env';
import { startStack, type Stack } from '../helpers/stack';

// The Batch API's files and batches (docs/interop.md) against a real Redis, real worker and the
// real iris models: every edge a client can reach, in that API's error shape.

const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const READER = 'acme-reader-0123456789abcdef';
const URL_IRIS = '/v1/models/iris/versions/2/predict';
const SETOSA = [5.1, 3.5, 1.4, 0.2];
const VIRGINICA = [6.7, 3.0, 5.2, 2.3];

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

function line(customId: string, body: unknown, url = URL_IRIS): string {
  return JSON.stringify({ custom_id: customId, method: 'POST', url, body });
}

describe('the Batch API: /v1/files and /v1/batches', () => {
  let stack: Stack;
  let redis: Redis;

  const call = async (method: string, path: string, body?: unknown, key = ACME, headers: Record<string, string> = {}): Promise<Answer> => {
    const response = await fetch(`${stack.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, headers: response.headers };
  };
  const upload = async (
    content: string | Buffer,
    purpose: string | null = 'batch',
    key = ACME,
    name = 'requests.jsonl',
  ): Promise<Answer> => {
    const form = new FormData();
    form.append('file', new Blob([content]), name);
    if (purpose !== null) form.append('purpose', purpose);
    const response = await fetch(`${stack.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${key}` }, body: form });
    return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
  };
  const content = async (fileId: string, key = ACME): Promise<string> => {
    const response = await fetch(`${stack.url}/v1/files/${fileId}/content`, { headers: { authorization: `Bearer ${key}` } });
    expect(response.status).toBe(200);
    return response.text();
  };
  const createBatch = async (fileId: string, extra: Record<string, unknown> = {}, headers: Record<string, string> = {}) =>
    call('POST', '/v1/batches', { input_file_id: fileId, endpoint: URL_IRIS, completion_window: '24h', ...extra }, ACME, headers);
  const finished = async (batchId: string): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 300; i++) {
      const { body } = await call('GET', `/v1/batches/${batchId}`);
      if (['completed', 'failed', 'cancelled'].includes(String(body.status))) return body;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`batch ${batchId} did not finish`);
  };
  const jsonl = (text: string): Record<string, unknown>[] =>
    text
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  beforeAll(async () => {
    stack = await startStack({
      API_KEYS: `acme:${ACME},globex:${GLOBEX},acme:${READER}:read`,
      RATE_LIMIT_PER_MINUTE: '100000',
      FILES_MAX_BYTES: String(3 * 1024 * 1024),
      BATCH_MAX_REQUESTS: '2000',
    });
    redis = newRedis();
  });

  afterAll(async () => {
    await redis.quit();
    await stack.close();
  });

  it('when a file of several parts is uploaded, then it is described, listed and downloaded byte for byte, and deleted', async () => {
    // 1.5 MiB: two parts in Redis, with a multi-byte character across the part boundary.
    const text = `${'x'.repeat((1 << 20) - 1)}é${'y'.repeat(512 * 1024)}\n`;
    const uploaded = await upload(text, 'batch', ACME, 'big.jsonl');

    expect(uploaded.status).toBe(200);
    expect(uploaded.body).toMatchObject({ object: 'file', bytes: Buffer.byteLength(text), filename: 'big.jsonl', purpose: 'batch' });
    const id = String(uploaded.body.id);
    expect(id).toMatch(/^file-[0-9a-f]{32}$/);
    expect(Number(uploaded.body.expires_at) - Number(uploaded.body.created_at)).toBe(stack.config.FILES_TTL_SECONDS);
    expect((await call('GET', `/v1/files/${id}`)).body).toEqual(uploaded.body);
    expect(await content(id)).toBe(text);
    const listed = await call('GET', '/v1/files');
    expect((listed.body.data as { id: string }[]).map((f) => f.id)).toContain(id);
    expect(listed.body).toMatchObject({ object: 'list', has_more: false });

    // Another tenant's file is as unknown as none.
    expect((await call('GET', `/v1/files/${id}`, undefined, GLOBEX)).status).toBe(404);
    expect((await call('DELETE', `/v1/files/${id}`, undefined, GLOBEX)).status).toBe(404);

    expect((await call('DELETE', `/v1/files/${id}`)).body).toEqual({ id, object: 'file', deleted: true });
    expect((await call('GET', `/v1/files/${id}`)).status).toBe(404);
    expect((await keysWithPrefix(redis, stack.config.REDIS_PREFIX)).filter((k) => k.includes(id))).toEqual([]);
  });

  it('when files are listed with limit, order and after, then pages follow each other with first_id, last_id and has_more', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(String((await upload(`${i}\n`, 'batch', GLOBEX)).body.id));
      await new Promise((resolve) => setTimeout(resolve, 1100)); // created_at is in seconds
    }
    const first = await call('GET', '/v1/files?limit=2', undefined, GLOBEX);
    expect(first.body).toMatchObject({ first_id: ids[2], last_id: ids[1], has_more: true });
    const second = await call('GET', `/v1/files?limit=2&after=${ids[1]}`, undefined, GLOBEX);
    expect((second.body.data as { id: string }[]).map((f) => f.id)).toEqual([ids[0]]);
    expect(second.body.has_more).toBe(false);
    const ascending = await call('GET', '/v1/files?order=asc', undefined, GLOBEX);
    expect((ascending.body.data as { id: string }[]).map((f) => f.id)).toEqual(ids);
    expect((await call('GET', '/v1/files?limit=0', undefined, GLOBEX)).body).toMatchObject({ error: { param: 'limit' } });
  });

  it('when an upload is refused, then the error names the field in the Batch API shape and nothing of it stays in Redis', async () => {
    const before = await keysWithPrefix(redis, stack.config.REDIS_PREFIX);
    const noPurpose = await upload('{}\n', null);
    expect(noPurpose.status).toBe(400);
    expect(noPurpose.body).toEqual({
      error: { message: "'purpose' is required", type: 'invalid_request_error', param: 'purpose', code: 'OB_ERR_INVALID_REQUEST' },
    });
    expect((await upload('{}\n', 'fine-tune')).body).toMatchObject({ error: { param: 'purpose' } });
    const tooLarge = await upload(Buffer.alloc(3 * 1024 * 1024 + 10, 0x61));
    expect(tooLarge.status).toBe(400); // the API's clients have no class for 413: the code says which
    expect(tooLarge.body).toMatchObject({ error: { type: 'invalid_request_error', param: 'file', code: 'OB_ERR_PAYLOAD_TOO_LARGE' } });
    const form = new FormData();
    form.append('purpose', 'batch');
    const noFile = await fetch(`${stack.url}/v1/files`, { method: 'POST', headers: { authorization: `Bearer ${ACME}` }, body: form });
    expect(noFile.status).toBe(400);
    expect(await noFile.json()).toMatchObject({ error: { param: 'file' } });
    const notMultipart = await call('POST', '/v1/files', { file: 'x' });
    expect(notMultipart.status).toBe(415);
    expect(await keysWithPrefix(redis, stack.config.REDIS_PREFIX)).toEqual(expect.arrayContaining(before));
    expect((await keysWithPrefix(redis, stack.config.REDIS_PREFIX)).filter((k) => k.includes(':file:'))).toEqual(
      before.filter((k) => k.includes(':file:')),
    );
  });

  it('when keys are wrong or lack the role, then 401 and 403 come in the Batch API shape', async () => {
    const missing = await fetch(`${stack.url}/v1/batches`);
    expect(missing.status).toBe(401);
    expect(await missing.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'invalid_api_key' } });
    const reader = await call('POST', '/v1/batches', { input_file_id: 'file-x', endpoint: URL_IRIS, completion_window: '24h' }, READER);
    expect(reader.status).toBe(403);
    expect(reader.body).toMatchObject({ error: { type: 'invalid_request_error', code: 'OB_ERR_FORBIDDEN' } });
    expect((await upload('{}\n', 'batch', READER)).status).toBe(403);
  });

  it(
    'when a batch mixes good rows, a bad row, an array row and a row with its own id, then the output follows the input, ' +
      'each refused request is in the error file with its field, and every prediction equals the native answer',
    async () => {
      const requests = [
        line('a', { inputs: [SETOSA] }),
        line('b', { inputs: [{ sepal_length: 'wide', sepal_width: 3, petal_length: 1, petal_width: 0.2 }] }),
        line('c', { inputs: [{ sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 }] }),
        line('d', { inputs: [{ id: 'mine', sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 }] }),
        line('e', { inputs: [SETOSA, VIRGINICA] }),
        line('f', { inputs: [VIRGINICA] }),
      ];
      const file = await upload(`${requests.join('\r\n')}\r\n`);
      const created = await createBatch(String(file.body.id), { metadata: { nightly: '2026-12-07' } });

      expect(created.status).toBe(200);
      expect(created.body).toMatchObject({
        object: 'batch',
        endpoint: URL_IRIS,
        model: 'iris',
        completion_window: '24h',
        input_file_id: file.body.id,
        metadata: { nightly: '2026-12-07' },
        errors: null,
        request_counts: { total: 6 },
      });
      expect(['in_progress', 'finalizing', 'completed']).toContain(created.body.status);
      const batch = await finished(String(created.body.id));
      expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 6, completed: 3, failed: 3 } });
      for (const field of ['created_at', 'in_progress_at', 'finalizing_at', 'completed_at', 'expires_at'])
        expect(typeof batch[field]).toBe('number');

      const output = jsonl(await content(String(batch.output_file_id)));
      expect(output.map((o) => o.custom_id)).toEqual(['a', 'c', 'f']);
      const native = await call('POST', '/v1/models/iris/versions/2/predict', { inputs: [SETOSA, VIRGINICA, VIRGINICA] });
      const nativeResults = native.body.results as Record<string, unknown>[];
      output.forEach((o, i) => {
        expect(o.error).toBeNull();
        expect(o.response).toMatchObject({ status_code: 200, request_id: o.id });
        expect((o.response as { body: unknown }).body).toEqual({ model: 'iris', version: '2', results: [nativeResults[i]] });
      });
      const errors = jsonl(await content(String(batch.error_file_id)));
      expect(errors.map((e) => e.custom_id)).toEqual(['b', 'd', 'e']);
      const bodies = errors.map((e) => (e.response as { status_code: number; body: { error: Record<string, unknown> } }).body.error);
      expect(bodies[0]).toMatchObject({ param: 'inputs[0].sepal_length', type: 'invalid_request_error' });
      expect(String(bodies[0]?.message)).toContain("field 'sepal_length'");
      expect(bodies[1]).toMatchObject({ param: 'id' });
      expect(bodies[2]).toMatchObject({ param: 'inputs', message: "'inputs' must hold one row per request line, not 2" });
      // Request ids are unique, and the same in a line and its response.
      const ids = [...output, ...errors].map((o) => o.id);
      expect(new Set(ids).size).toBe(6);

      const described = await call('GET', `/v1/files/${String(batch.output_file_id)}`);
      expect(described.body).toMatchObject({
        object: 'file',
        purpose: 'batch_output',
        bytes: Buffer.byteLength(await content(String(batch.output_file_id))),
      });
      // The batch is a job: the job list and the job's own status show it.
      const jobId = String(batch.id).slice('batch_'.length);
      expect((await call('GET', `/v1/batch-result/${jobId}`)).body).toMatchObject({ status: 'completed', progress: { total: 3 } });
      // Another tenant sees neither the batch nor its files.
      expect((await call('GET', `/v1/batches/${String(batch.id)}`, undefined, GLOBEX)).status).toBe(404);
      expect((await call('GET', `/v1/files/${String(batch.output_file_id)}/content`, undefined, GLOBEX)).status).toBe(404);
    },
  );

  it(
    'when a file has a bad JSON line, a duplicate custom_id, another url, a wrong method and an empty line, ' +
      'then the batch fails validation naming each line, and nothing runs',
    async () => {
      const requests = [
        line('a', { inputs: [SETOSA] }),
        '{"custom_id": "b", "method": "POST", ',
        line('a', { inputs: [SETOSA] }),
        line('c', { inputs: [SETOSA] }, '/v1/models/iris/versions/1/predict'),
        JSON.stringify({ custom_id: 'd', method: 'GET', url: URL_IRIS, body: {} }),
        '',
        line('e', { inputs: [SETOSA] }),
      ];
      const jobsBefore = (await call('GET', '/v1/jobs?limit=1000')).body.data as unknown[];
      const file = await upload(`${requests.join('\n')}\n`);
      const created = await createBatch(String(file.body.id));

      expect(created.status).toBe(200);
      expect(created.body).toMatchObject({ status: 'failed', output_file_id: null, error_file_id: null });
      expect(typeof created.body.failed_at).toBe('number');
      const errors = (created.body.errors as { object: string; data: { code: string; line: number; param: string | null }[] }).data;
      expect(errors.map((e) => [e.code, e.line])).toEqual([
        ['invalid_json_line', 2],
        ['duplicate_custom_id', 3],
        ['mismatched_endpoint', 4],
        ['invalid_request', 5],
        ['invalid_json_line', 6],
      ]);
      expect(errors[3]?.param).toBe('method');
      expect((await call('GET', `/v1/batches/${String(created.body.id)}`)).body).toEqual(created.body);
      expect(((await call('GET', '/v1/jobs?limit=1000')).body.data as unknown[]).length).toBe(jobsBefore.length);

      const empty = await createBatch(String((await upload('\n')).body.id));
      expect((empty.body.errors as { data: { code: string }[] }).data.map((e) => e.code)).toEqual(['empty_file']);
      const many = Array.from({ length: 2001 }, (_, i) => line(`r${i}`, { inputs: [SETOSA] })).join('\n');
      const tooMany = await createBatch(String((await upload(many)).body.id));
      expect((tooMany.body.errors as { data: { code: string; line: number }[] }).data).toEqual([
        expect.objectContaining({ code: 'too_many_requests', line: 2001 }),
      ]);
    },
  );

  it('when every request of a file is refused, then the batch completes without a job and its error file holds them all', async () => {
    const file = await upload([line('x', { inputs: [[1, 2]] }), line('y', { inputs: [] })].join('\n'));
    const batch = await createBatch(String(file.body.id));

    expect(batch.body).toMatchObject({ status: 'completed', output_file_id: null, request_counts: { total: 2, completed: 0, failed: 2 } });
    const errors = jsonl(await content(String(batch.body.error_file_id)));
    expect(errors.map((e) => e.custom_id)).toEqual(['x', 'y']);
    expect((await call('GET', `/v1/batches/${String(batch.body.id)}`)).body).toEqual(batch.body);
  });

  it(
    'when a batch calls /v1/embeddings, then each text is one row of the embedding model, base64 lines decode to the float ' +
      'vectors, usage counts tokens, and a line with two texts or another model is refused',
    async () => {
      const texts = ['free money now, click here', 'lunch on tuesday?', 'your account statement is ready'];
      const embed = (customId: string, body: Record<string, unknown>) => line(customId, { model: 'textembed', ...body }, '/v1/embeddings');
      const requests = [
        embed('t0', { input: texts[0] }),
        embed('t1', { input: [texts[1]], encoding_format: 'base64' }),
        embed('two', { input: [texts[0], texts[1]] }),
        embed('t2', { input: texts[2], dimensions: 64 }),
        embed('dims', { input: texts[2], dimensions: 32 }),
      ];
      const file = String((await upload(requests.join('\n'))).body.id);
      const created = await call('POST', '/v1/batches', { input_file_id: file, endpoint: '/v1/embeddings', completion_window: '24h' });
      expect(created.body).toMatchObject({ model: 'textembed', request_counts: { total: 5 } });
      const batch = await finished(String(created.body.id));
      expect(batch).toMatchObject({ status: 'completed', request_counts: { total: 5, completed: 3, failed: 2 } });

      const native = await call('POST', '/v1/embeddings', { model: 'textembed', input: texts });
      const vectors = (native.body.data as { embedding: number[] }[]).map((d) => d.embedding);
      const output = jsonl(await content(String(batch.output_file_id)));
      expect(output.map((o) => o.custom_id)).toEqual(['t0', 't1', 't2']);
      const bodies = output.map((o) => (o.response as { body: Record<string, unknown> }).body);
      expect(bodies[0]).toMatchObject({
        object: 'list',
        model: 'textembed',
        data: [{ object: 'embedding', index: 0, embedding: vectors[0] }],
      });
      const b64 = (bodies[1]?.data as { embedding: string }[])[0]?.embedding ?? '';
      const decoded = Buffer.from(b64, 'base64');
      const floats = Array.from({ length: decoded.length / 4 }, (_, i) => decoded.readFloatLE(i * 4));
      floats.forEach((v, i) => expect(v).toBeCloseTo(vectors[1]?.[i] ?? NaN, 6));
      expect((bodies[2]?.data as { embedding: number[] }[])[0]?.embedding).toEqual(vectors[2]);
      const singles = await Promise.all(texts.map((t) => call('POST', '/v1/embeddings', { model: 'textembed', input: t })));
      bodies.forEach((b, i) => expect(b.usage).toEqual(singles[i]?.body.usage));
      const errors = jsonl(await content(String(batch.error_file_id)));
      expect(errors.map((e) => [e.custom_id, (e.response as { body: { error: { param: string } } }).body.error.param])).toEqual([
        ['two', 'input'],
        ['dims', 'dimensions'],
      ]);

      const mixed = String(
        (await upload([embed('a', { input: 'x' }), line('b', { model: 'textembed@1', input: 'y' }, '/v1/embeddings')].join('\n'))).body.id,
      );
      const refused = await call('POST', '/v1/batches', { input_file_id: mixed, endpoint: '/v1/embeddings', completion_window: '24h' });
      expect((refused.body.errors as { data: { code: string; line: number }[] }).data).toEqual([
        expect.objectContaining({ code: 'mixed_models', line: 2 }),
      ]);
    },
  );

  it('when a batch is created badly, then each mistake is a 400 or 404 naming its field', async () => {
    const file = String((await upload(`${line('a', { inputs: [SETOSA] })}\n`)).body.id);
    const cases: [Record<string, unknown>, number, string][] = [
      [{ input_file_id: 'file-0123', endpoint: URL_IRIS, completion_window: '24h' }, 404, 'input_file_id'],
      [{ input_file_id: file, endpoint: '/v1/chat/completions', completion_window: '24h' }, 400, 'endpoint'],
      [{ input_file_id: file, endpoint: URL_IRIS, completion_window: '1h' }, 400, 'completion_window'],
      [{ input_file_id: file, endpoint: URL_IRIS, completion_window: '24h', metadata: { k: 5 } }, 400, 'metadata.k'],
      [{ input_file_id: file, endpoint: URL_IRIS, completion_window: '24h', model: 'x' }, 400, 'model'],
      [{ endpoint: URL_IRIS, completion_window: '24h' }, 400, 'input_file_id'],
    ];
    for (const [body, status, param] of cases) {
      const answer = await call('POST', '/v1/batches', body);
      expect([answer.status, (answer.body.error as { param: string }).param]).toEqual([status, param]);
    }
    const unknownModel = await call('POST', '/v1/batches', {
      input_file_id: file,
      endpoint: '/v1/models/nope/predict',
      completion_window: '24h',
    });
    expect(unknownModel.status).toBe(404);
    expect(unknownModel.body).toMatchObject({ error: { type: 'invalid_request_error', code: 'model_not_found' } });
    const notJson = await call('POST', '/v1/batches', undefined, ACME, { 'content-type': 'text/plain' });
    expect(notJson.status).toBe(415);
  });

  it('when the same Idempotency-Key creates a batch twice, then both answers name one batch and one job', async () => {
    // One request refused before the job: written twice, it would be in the error file twice.
    const file = String((await upload(`${line('a', { inputs: [SETOSA] })}\n${line('b', { inputs: [[1]] })}\n`)).body.id);
    const [one, two] = await Promise.all([
      createBatch(file, {}, { 'idempotency-key': 'nightly-2026-12-07' }),
      createBatch(file, {}, { 'idempotency-key': 'nightly-2026-12-07' }),
    ]);
    const ids = [one, two].filter((a) => a.status === 200).map((a) => a.body.id);
    expect(ids.length).toBeGreaterThanOrEqual(1);
    expect(new Set(ids).size).toBe(1);
    const again = await createBatch(file, {}, { 'idempotency-key': 'nightly-2026-12-07' });
    expect(again.body.id).toBe(ids[0]);
    const batch = await finished(String(ids[0]));
    expect(batch.request_counts).toEqual({ total: 2, completed: 1, failed: 1 });
    expect(jsonl(await content(String(batch.error_file_id))).map((e) => e.custom_id)).toEqual(['b']);
  });

  it('when batches are listed, cancelled and their jobs deleted, then pages follow, cancel answers, a deleted one is gone', async () => {
    // An API with no worker behind it: its batches stay in progress, so the cancel meets one unfinished.
    const withWorker = stack;
    stack = await startStack({ API_KEYS: `acme:${ACME}`, RATE_LIMIT_PER_MINUTE: '100000' }, false);
    try {
      await listCancelAndDelete();
    } finally {
      await stack.close();
      stack = withWorker;
    }
  });

  async function listCancelAndDelete(): Promise<void> {
    for (const id of ['x', 'y']) await createBatch(String((await upload(`${line(id, { inputs: [SETOSA] })}\n`)).body.id));
    const running = await createBatch(String((await upload(`${line('r', { inputs: [SETOSA] })}\n`)).body.id));
    expect(running.body.status).toBe('in_progress');
    const cancelled = await call('POST', `/v1/batches/${String(running.body.id)}/cancel`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', output_file_id: null, error_file_id: null });
    expect(typeof cancelled.body.cancelled_at).toBe('number');
    const again = await call('POST', `/v1/batches/${String(running.body.id)}/cancel`);
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ error: { type: 'invalid_request_error', code: 'OB_ERR_JOB_FINISHED' } });

    const page = await call('GET', '/v1/batches?limit=2');
    expect(page.body).toMatchObject({ object: 'list', has_more: true, first_id: running.body.id });
    const data = page.body.data as { id: string; created_at: number }[];
    const next = await call('GET', `/v1/batches?limit=100&after=${String(page.body.last_id)}`);
    const all = [...data, ...(next.body.data as { id: string; created_at: number }[])];
    expect(new Set(all.map((b) => b.id)).size).toBe(3);
    expect(all.map((b) => b.created_at)).toEqual([...all.map((b) => b.created_at)].sort((x, y) => y - x));
    expect((await call('GET', '/v1/batches?limit=101')).status).toBe(400);

    // A batch is its job: deleting the job deletes the batch, and the list forgets it.
    const jobId = String(running.body.id).slice('batch_'.length);
    expect((await call('DELETE', `/v1/batch-result/${jobId}`)).status).toBe(204);
    expect((await call('GET', `/v1/batches/${String(running.body.id)}`)).status).toBe(404);
    const after = await call('GET', '/v1/batches?limit=100');
    expect((after.body.data as { id: string }[]).map((b) => b.id)).not.toContain(running.body.id);
    expect((await call('POST', `/v1/batches/${String(running.body.id)}/cancel`)).status).toBe(404);
  }
});
