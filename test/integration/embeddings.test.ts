import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tableFromIPC } from 'apache-arrow';
import { parse } from 'csv-parse/sync';
import request from 'supertest';
import { loadGolden } from '../helpers/golden';
import { goldenDeviations } from '../helpers/golden-parity';
import { readManifest } from '../helpers/model-files';
import { startStack, type Stack } from '../helpers/stack';

/**
 * POST /v1/embeddings (OpenAI's request and response) against real Redis, a real worker and the
 * real textembed model; its errors in OpenAI's shape; and batch results of the embedding model
 * downloaded as NDJSON, CSV, Arrow and Parquet.
 */
const KEY = 'embed-test-key-0123456789';
const READER = 'embed-reader-key-0123456789';
const AUTH = { authorization: `Bearer ${KEY}` };
const SYNC_MAX_ROWS = 8;
const D = 64;

interface Embeddings {
  object: string;
  data: { object: string; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

function expectCompatErrorBody(response: request.Response, status: number, param: string | null, code?: string): void {
  expect([response.status, response.headers['content-type']]).toEqual([status, expect.stringMatching(/^application\/json/)]);
  expect(response.body).toEqual({
    error: { message: expect.any(String), type: expect.any(String), param, code: code ?? expect.any(String) },
  });
  expect(Object.keys(response.body as object)).toEqual(['error']);
}

const norm = (v: number[]): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('POST /v1/embeddings and batches of an embedding model (real Redis, worker and textembed)', () => {
  let stack: Stack;
  let tmp: string;
  let duck: DuckDBInstance;
  let db: DuckDBConnection;

  beforeAll(async () => {
    stack = await startStack({
      API_KEYS: `acme:${KEY},acme:${READER}:read`,
      SYNC_MAX_ROWS: String(SYNC_MAX_ROWS),
      RATE_LIMIT_PER_MINUTE: '100000',
    });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'embeddings-'));
    duck = await DuckDBInstance.create(':memory:');
    db = await duck.connect();
  });

  afterAll(async () => {
    db.closeSync();
    duck.closeSync();
    rmSync(tmp, { recursive: true, force: true });
    await stack.close();
  });

  const embed = (body: unknown, headers: Record<string, string> = AUTH): request.Test =>
    request(stack.url)
      .post('/v1/embeddings')
      .set(headers)
      .send(body as object);

  it('when the model is listed, then it is task embedding of 64 dimensions and the repository reports no problem', async () => {
    const response = await request(stack.url).get('/v1/models/textembed').set(AUTH);
    expect(response.status).toBe(200);
    expect(response.body.versions).toEqual([
      expect.objectContaining({ name: 'textembed', version: '1', task: 'embedding', labels: null, dimensions: 64 }),
    ]);
    const all = await request(stack.url).get('/v1/models').set(AUTH);
    expect(all.body.problems).toEqual([]);
  });

  it('when /openapi.json is read, then POST /v1/embeddings and the 64-float result line of textembed are described', async () => {
    const response = await request(stack.url).get('/openapi.json');
    const doc = response.body as { paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };
    expect(doc.paths['/v1/embeddings']?.post).toBeDefined();
    const described = JSON.stringify(doc.components.schemas);
    expect(described).toContain('"embedding":{"type":"array"');
    expect(described).toMatch(/"minItems":64,"maxItems":64/);
  });

  it('when input is one string, then one normalised 64-float embedding in OpenAI’s shape, usage counting graph tokens', async () => {
    const response = await embed({ model: 'textembed', input: 'Click HERE for FREE money, a b!', user: 'someone' });

    expect(response.status).toBe(200);
    const body = response.body as Embeddings;
    expect(Object.keys(body).sort()).toEqual(['data', 'model', 'object', 'usage']);
    expect(body).toMatchObject({ object: 'list', model: 'textembed', usage: { prompt_tokens: 5, total_tokens: 5 } });
    expect(body.data).toHaveLength(1);
    expect(body.data[0]).toMatchObject({ object: 'embedding', index: 0 });
    const vector = body.data[0]?.embedding as number[];
    expect(vector).toHaveLength(D);
    expect(Math.abs(norm(vector) - 1)).toBeLessThan(1e-5);
  });

  it('when input is an array (name@version), then one embedding per input in order, each as golden.json says (1e-5)', async () => {
    const golden = loadGolden('textembed', '1');
    const inputs = golden.inputs.slice(0, SYNC_MAX_ROWS).map((row) => row.text as string);

    const response = await embed({ model: 'textembed@1', input: inputs });

    expect(response.status).toBe(200);
    const body = response.body as Embeddings;
    expect(body.model).toBe('textembed@1');
    expect(body.data.map((d) => d.index)).toEqual(inputs.map((_, i) => i));
    const results = body.data.map((d) => ({ embedding: d.embedding }));
    const sliced = {
      ...golden,
      inputs: golden.inputs.slice(0, SYNC_MAX_ROWS),
      outputs: { embedding: golden.outputs.embedding?.slice(0, SYNC_MAX_ROWS) ?? [] },
    };
    expect(goldenDeviations(readManifest('textembed', '1'), sliced, results)).toEqual([]);
    // Same text, same vector; different texts, different vectors.
    const again = await embed({ model: 'textembed', input: [inputs[1], inputs[0]] });
    expect((again.body as Embeddings).data[0]?.embedding).toEqual(body.data[1]?.embedding);
    expect(body.data[0]?.embedding).not.toEqual(body.data[1]?.embedding);
  });

  it('when encoding_format is base64, then each embedding is the little-endian float32 bytes of the float answer', async () => {
    const input = ['free money now', 'meeting agenda for tuesday'];
    const floats = (await embed({ model: 'textembed', input, encoding_format: 'float' })).body as Embeddings;
    const response = await embed({ model: 'textembed', input, encoding_format: 'base64' });

    expect(response.status).toBe(200);
    const base64 = response.body as Embeddings;
    base64.data.forEach((d, i) => {
      const bytes = Buffer.from(d.embedding as string, 'base64');
      expect(bytes.length).toBe(D * 4);
      const decoded = Array.from({ length: D }, (_, k) => bytes.readFloatLE(k * 4));
      const expected = (floats.data[i]?.embedding as number[]).map((v) => Math.fround(v));
      expect(decoded).toEqual(expected);
    });
    expect(base64.usage).toEqual(floats.usage);
  });

  it('when dimensions is the model’s, then it is accepted; any other, then 400 invalid_request_error naming dimensions', async () => {
    expect((await embed({ model: 'textembed', input: 'hello there', dimensions: D })).status).toBe(200);

    const response = await embed({ model: 'textembed', input: 'hello there', dimensions: 32 });

    expectCompatErrorBody(response, 400, 'dimensions', 'OB_ERR_INVALID_REQUEST');
    expect(response.body.error.type).toBe('invalid_request_error');
    expect(response.body.error.message).toMatch(/64/);
  });

  it('when the model does not exist (or its version), then 404 model_not_found in OpenAI’s shape naming model', async () => {
    expectCompatErrorBody(await embed({ model: 'no-such-model', input: 'x y' }), 404, 'model', 'model_not_found');
    expectCompatErrorBody(await embed({ model: 'textembed@9', input: 'x y' }), 404, 'model', 'model_not_found');
  });

  it('when the model is not an embedding model (spam, a classifier), then 400 naming model and nothing runs', async () => {
    const response = await embed({ model: 'spam', input: 'free money' });
    expectCompatErrorBody(response, 400, 'model', 'OB_ERR_INVALID_REQUEST');
    expect(response.body.error.message).toMatch(/not an embedding model/);
  });

  it('when input is empty (an empty array, an empty string, or an element), then 400 naming the field', async () => {
    expectCompatErrorBody(await embed({ model: 'textembed', input: [] }), 400, 'input');
    expectCompatErrorBody(await embed({ model: 'textembed', input: '' }), 400, 'input');
    expectCompatErrorBody(await embed({ model: 'textembed', input: ['fine', ''] }), 400, 'input[1]');
    expectCompatErrorBody(await embed({ model: 'textembed' }), 400, 'input');
  });

  it('when input is token arrays, then 400 says token arrays are not accepted and names input', async () => {
    for (const input of [
      [1, 2, 3],
      [
        [1, 2],
        [3, 4],
      ],
    ]) {
      const response = await embed({ model: 'textembed', input });
      expectCompatErrorBody(response, 400, 'input');
      expect(response.body.error.message).toMatch(/token arrays are not accepted/);
    }
  });

  it('when a field is unknown or encoding_format is not float/base64, then 400 names it', async () => {
    expectCompatErrorBody(await embed({ model: 'textembed', input: 'a b', temperature: 1 }), 400, 'temperature');
    expectCompatErrorBody(await embed({ model: 'textembed', input: 'a b', encoding_format: 'int8' }), 400, 'encoding_format');
  });

  it('when more inputs than SYNC_MAX_ROWS come, then 400 (OpenAI’s clients type no 413) naming input, OB_ERR_TOO_MANY_ROWS', async () => {
    const response = await embed({ model: 'textembed', input: Array.from({ length: SYNC_MAX_ROWS + 1 }, (_, i) => `text ${i}`) });
    expectCompatErrorBody(response, 400, 'input', 'OB_ERR_TOO_MANY_ROWS');
  });

  it('when a text is longer than the model’s maxLength, then 400 names input[row]', async () => {
    const response = await embed({ model: 'textembed', input: ['ok text', 'x'.repeat(100_001)] });
    expectCompatErrorBody(response, 400, 'input[1]', 'OB_ERR_INVALID_ROWS');
  });

  it('when there is no key, a wrong key or a read-only key, then 401 / 403 in OpenAI’s shape', async () => {
    expectCompatErrorBody(await embed({ model: 'textembed', input: 'a b' }, {}), 401, null, 'invalid_api_key');
    expectCompatErrorBody(await embed({ model: 'textembed', input: 'a b' }, { authorization: 'Bearer wrong-key-0123456789' }), 401, null);
    expectCompatErrorBody(await embed({ model: 'textembed', input: 'a b' }, { authorization: `Bearer ${READER}` }), 403, null);
  });

  it('when the body is not JSON, then 400 in OpenAI’s shape; other routes keep answering problem+json', async () => {
    const response = await request(stack.url).post('/v1/embeddings').set(AUTH).set('content-type', 'application/json').send('{"model":');
    expectCompatErrorBody(response, 400, null, 'OB_ERR_MALFORMED_JSON');
    const other = await request(stack.url)
      .post('/v1/models/nope/predict')
      .set(AUTH)
      .send({ inputs: [{}] });
    expect(other.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  describe('batch results of the embedding model', () => {
    const texts = ['Free money, click here', 'Lunch on Tuesday?', '', 'Meeting notes attached', '🎉'];
    let jobId: string;
    let lines: { id: string; embedding: number[] }[];

    beforeAll(async () => {
      const submitted = await request(stack.url)
        .post('/v1/batch-predict')
        .set(AUTH)
        .send({ model: 'textembed', inputs: texts.map((text, i) => ({ id: `t${i}`, text })) });
      expect(submitted.status).toBe(202);
      jobId = String(submitted.body.jobId);
      const deadline = Date.now() + 60_000;
      for (;;) {
        const status = await request(stack.url).get(`/v1/batch-result/${jobId}?wait=10`).set(AUTH);
        if (status.body.status === 'completed') break;
        if (Date.now() > deadline || ['failed', 'cancelled'].includes(String(status.body.status)))
          throw new Error(JSON.stringify(status.body));
      }
      const ndjson = await request(stack.url)
        .get(`/v1/batch-result/${jobId}/results?format=ndjson`)
        .set(AUTH)
        .buffer(true)
        .parse((res, done) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => done(null, text));
        });
      lines = String(ndjson.body)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { id: string; embedding: number[] });
    });

    it('when downloaded as NDJSON, then each line is {"id", "embedding": [64 floats]} of norm 1', () => {
      expect(lines).toHaveLength(texts.length);
      lines.forEach((line, i) => {
        expect(Object.keys(line)).toEqual(['id', 'embedding']);
        expect(line.id).toBe(`t${i}`);
        expect(line.embedding).toHaveLength(D);
        expect(Math.abs(norm(line.embedding) - 1)).toBeLessThan(1e-5);
      });
      // No known word (empty text, emoji): the same vector, that of an all-zero TF-IDF row.
      expect(lines[2]?.embedding).toEqual(lines[4]?.embedding);
    });

    it('when labels are sent for the job, then 404 OB_ERR_PREDICTIONS_NOT_KEPT: embeddings are not judged', async () => {
      const response = await request(stack.url)
        .post(`/v1/batch-result/${jobId}/labels`)
        .set(AUTH)
        .send({ labels: [{ index: 0, label: 'spam' }] });
      expect([response.status, response.body.code]).toEqual([404, 'OB_ERR_PREDICTIONS_NOT_KEPT']);
    });

    it('when its drift is asked for, then the features of the baseline (text.length, text.oov) and no prediction', async () => {
      const response = await request(stack.url).get('/v1/models/textembed/versions/1/drift?window=15m').set(AUTH);
      expect(response.status).toBe(200);
      expect(Object.keys(response.body.features as object).sort()).toEqual(['text.length', 'text.oov']);
      expect(response.body.prediction ?? null).toBeNull();
    });

    it('when downloaded as CSV, then the columns are id, embedding (JSON array), error', async () => {
      const response = await request(stack.url).get(`/v1/batch-result/${jobId}/results?format=csv`).set(AUTH);
      expect(response.status).toBe(200);
      const rows: string[][] = parse(response.text);
      expect(rows[0]).toEqual(['id', 'embedding', 'error']);
      rows.slice(1).forEach((row, i) => {
        expect(row[0]).toBe(`t${i}`);
        expect(JSON.parse(row[1] ?? '')).toEqual(lines[i]?.embedding);
        expect(row[2]).toBe('');
      });
    });

    it('when downloaded as Arrow, then embedding is FixedSizeList<float32>[64] equal to the JSON values', async () => {
      const response = await request(stack.url)
        .get(`/v1/batch-result/${jobId}/results?format=arrow`)
        .set(AUTH)
        .buffer(true)
        .parse((res, done) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => done(null, Buffer.concat(parts)));
        });
      expect(response.status).toBe(200);
      const table = tableFromIPC(response.body as Buffer);
      expect(table.schema.fields.map((f) => f.name)).toEqual(['id', 'embedding', 'error']);
      expect(String(table.schema.fields[1]?.type)).toMatch(/FixedSizeList\[64\]<Float32>/);
      const rows = table.toArray() as { id: string; embedding: Iterable<number> }[];
      rows.forEach((row, i) => {
        expect(row.id).toBe(`t${i}`);
        expect(Array.from(row.embedding)).toEqual(lines[i]?.embedding.map((v) => Math.fround(v)));
      });
    });

    it('when downloaded as Parquet, then DuckDB reads embedding as FLOAT[64] equal to the JSON values', async () => {
      const response = await request(stack.url)
        .get(`/v1/batch-result/${jobId}/results?format=parquet`)
        .set(AUTH)
        .buffer(true)
        .parse((res, done) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => done(null, Buffer.concat(parts)));
        });
      expect(response.status).toBe(200);
      const file = path.join(tmp, 'results.parquet');
      writeFileSync(file, response.body as Buffer);
      const reader = await db.runAndReadAll(
        `SELECT id, embedding FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`,
      );
      const rows = reader.getRowObjectsJS() as { id: string; embedding: number[] }[];
      expect(rows).toHaveLength(texts.length);
      rows.forEach((row, i) => {
        expect(row.id).toBe(`t${i}`);
        expect(Array.from(row.embedding)).toEqual(lines[i]?.embedding.map((v) => Math.fround(v)));
      });
    });
  });
});
