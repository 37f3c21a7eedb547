import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tableFromIPC, type Table } from 'apache-arrow';
import request from 'supertest';
import type { ModelManifest } from '@onnx-batch/contracts';
import { createLogger, formatFloat, JobStore, RedisKeys } from '@onnx-batch/shared';
import { startWorkerService, type WorkerService } from '@onnx-batch/worker';
import { newRedis } from '../helpers/env';
import { copyModels, type ModelsCopy } from '../helpers/model-files';
import { ELEM, onnxModel, tensorType } from '../helpers/onnx-graphs';
import { startStack, type Stack } from '../helpers/stack';

/**
 * Results downloaded as Arrow IPC and Parquet, read back by independent implementations
 * (apache-arrow's reader, DuckDB's read_parquet) and compared value by value with the JSON
 * results of the same job. Jobs run on iris and on small one-node models written here: two
 * regressions (named targets; a single `value` whose out-of-range rows fail one by one) and two
 * tensor models (a fixed output shape: FixedSizeList; a dynamic one: JSON text).
 */
const CHUNK_SIZE = 8;
const ARROW = 'application/vnd.apache.arrow.stream';
const PARQUET = 'application/vnd.apache.parquet';

type JsonResult = Record<string, unknown> & { id?: string | number; error?: { code: string; message: string } };

interface Download {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** True when the body ended cleanly (its terminating chunk arrived). */
  complete: boolean;
}

/** GETs a URL, reading the whole body; `complete` false when the connection ended before the body did. */
function download(url: string, headers: Record<string, string> = {}): Promise<Download> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let settled = false;
      const settle = (complete: boolean): void => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), complete });
      };
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => settle(res.complete));
      res.on('error', () => settle(false));
      res.on('close', () => settle(res.complete));
    });
    req.on('error', reject);
  });
}

function manifest(name: string, task: ModelManifest['task'], body: Omit<ModelManifest, 'name' | 'version' | 'task'>): ModelManifest {
  return { name, version: '1', task, ...body };
}

/** The small models of this test, each one ONNX node, beside a copy of iris. */
function writeModels(copy: ModelsCopy): void {
  const put = (m: ModelManifest, graph: Uint8Array): void => {
    const dir = path.join(copy.dir, m.name, '1');
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'model.json'), JSON.stringify(m));
    writeFileSync(path.join(dir, 'model.onnx'), graph);
  };
  // y = 1.5 × [a, b]: two named targets.
  put(
    manifest('scale', 'regression', {
      features: [
        { name: 'a', type: 'number' },
        { name: 'b', type: 'number' },
      ],
      inputs: [{ name: 'x', dtype: 'float32', shape: [-1, 2], features: ['a', 'b'] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
      result: { kind: 'regression', output: 'y', names: ['low', 'high'] },
    }),
    onnxModel({
      node: { opType: 'Mul', input: ['x', 'w'], output: ['y'] },
      inputs: [{ name: 'x', type: tensorType(ELEM.FLOAT, ['N', 2]) }],
      outputs: [{ name: 'y', type: tensorType(ELEM.FLOAT, ['N', 2]) }],
      initializers: [{ name: 'w', value: 1.5 }],
    }),
  );
  // y = [0.7][k]: k = 0 (or -1) runs, k ≥ 1 is out of bounds, so ONNX Runtime refuses that row alone.
  put(
    manifest('pick', 'regression', {
      features: [{ name: 'k', type: 'integer', minimum: -1, maximum: 5 }],
      inputs: [{ name: 'k', dtype: 'int64', shape: [-1, 1], features: ['k'] }],
      outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 1] }],
      result: { kind: 'regression', output: 'y' },
    }),
    onnxModel({
      node: { opType: 'Gather', input: ['w', 'k'], output: ['y'] },
      inputs: [{ name: 'k', type: tensorType(ELEM.INT64, ['N', 1]) }],
      outputs: [{ name: 'y', type: tensorType(ELEM.FLOAT, ['N', 1]) }],
      initializers: [{ name: 'w', value: 0.7 }],
    }),
  );
  // out = grid × 0.1, per row a fixed [2, 3] (gridjson: the manifest leaves a dimension open).
  for (const [name, shape] of [
    ['grid', [-1, 2, 3]],
    ['gridjson', [-1, -1, 3]],
  ] as const) {
    put(
      manifest(name, 'tensor', {
        features: [{ name: 'grid', type: 'tensor', shape: [2, 3] }],
        inputs: [{ name: 'grid', dtype: 'float32', shape: [-1, 2, 3], features: ['grid'] }],
        outputs: [{ name: 'out', dtype: 'float32', shape: [...shape] }],
        result: { kind: 'tensor' },
      }),
      onnxModel({
        node: { opType: 'Mul', input: ['grid', 'w'], output: ['out'] },
        inputs: [{ name: 'grid', type: tensorType(ELEM.FLOAT, ['N', 2, 3]) }],
        outputs: [{ name: 'out', type: tensorType(ELEM.FLOAT, ['N', 2, 3]) }],
        initializers: [{ name: 'w', value: 0.1 }],
      }),
    );
  }
}

/** Iris rows with ids of both kinds (strings, integers) and some without; the last 5 rows are a partial chunk. */
function irisRows(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, (_, i) => ({
    ...(i % 5 === 4 ? {} : { id: i % 3 === 0 ? i : `r-${i}-ü` }),
    sepal_length: 4 + (i % 41) / 10,
    sepal_width: 2 + (i % 23) / 10,
    petal_length: 1 + (i % 59) / 10,
    petal_width: (i % 26) / 10,
  }));
}

const ndjson = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

/** A float32 value as the JSON results print it: 6 significant digits (formatFloat), so equal to the JSON number exactly. */
function expectFloat32(actual: unknown, json: unknown): void {
  expect(typeof actual).toBe('number');
  expect(Math.fround(actual as number)).toBe(actual);
  expect(Number(formatFloat(actual as number))).toBe(json);
}

/** The values of a column of a result: what the JSON result holds for it (undefined for a failed row). */
type Expected = (result: JsonResult) => unknown;

/** What every column of a model's results should hold, from its JSON result. */
function expectations(model: string): Record<string, { float: boolean; expected: Expected }> {
  const id: Expected = (r) => (r.id === undefined ? null : String(r.id));
  const error: Expected = (r) => (r.error ? `${r.error.code}: ${r.error.message}` : null);
  const f = (get: Expected) => ({ float: true, expected: get });
  const s = (get: Expected) => ({ float: false, expected: get });
  switch (model) {
    case 'iris': {
      const p =
        (label: string): Expected =>
        (r) =>
          (r.probabilities as Record<string, number> | undefined)?.[label];
      return {
        id: s(id),
        label: s((r) => r.label ?? null),
        confidence: f((r) => r.confidence),
        p_setosa: f(p('setosa')),
        p_versicolor: f(p('versicolor')),
        p_virginica: f(p('virginica')),
        error: s(error),
      };
    }
    case 'scale':
      return {
        id: s(id),
        low: f((r) => (r.values as Record<string, number> | undefined)?.low),
        high: f((r) => (r.values as Record<string, number> | undefined)?.high),
        error: s(error),
      };
    case 'pick':
      return { id: s(id), value: f((r) => r.value), error: s(error) };
    default:
      return { id: s(id), error: s(error) };
  }
}

/** Compares a downloaded table's rows (plain objects, column → value) with the JSON results, every value. */
function expectRowsEqualJson(model: string, rows: Record<string, unknown>[], json: JsonResult[], tensor?: 'list' | 'json'): void {
  expect(rows).toHaveLength(json.length);
  const columns = expectations(model);
  rows.forEach((row, i) => {
    const result = json[i] as JsonResult;
    for (const [name, { float, expected }] of Object.entries(columns)) {
      const want = expected(result);
      if (want === undefined || want === null) expect([name, row[name]]).toEqual([name, null]);
      else if (float) expectFloat32(row[name], want);
      else expect([name, row[name]]).toEqual([name, want]);
    }
    if (tensor) {
      const out = (result.outputs as Record<string, unknown> | undefined)?.out;
      if (out === undefined) expect(row.out).toBeNull();
      else if (tensor === 'json') expect(row.out).toBe(JSON.stringify(out));
      else {
        const flat = (out as number[][]).flat();
        const got = row.out as number[];
        expect(got).toHaveLength(6);
        got.forEach((v, k) => expectFloat32(v, flat[k]));
      }
    }
  });
}

/** An Arrow table's rows as plain objects (a FixedSizeList cell as a number array). */
function arrowRows(table: Table): Record<string, unknown>[] {
  return table.toArray().map((row: { toJSON(): Record<string, unknown> }) => {
    const plain = row.toJSON();
    for (const [key, value] of Object.entries(plain)) {
      if (value !== null && typeof value === 'object') plain[key] = Array.from(value as Iterable<number>);
    }
    return plain;
  });
}

describe('results as Arrow IPC and Parquet, read back by apache-arrow and DuckDB (real Redis, real models)', () => {
  let copy: ModelsCopy;
  let stack: Stack;
  let worker: WorkerService;
  let tmp: string;
  let duck: DuckDBInstance;
  let db: DuckDBConnection;
  const redis = newRedis();
  const jobs: Record<string, { id: string; rows: number }> = {};

  const url = (id: string, query = ''): string => `${stack.url}/v1/batch-result/${id}/results${query}`;

  async function submit(model: string, rows: unknown[]): Promise<string> {
    const response = await request(stack.url)
      .post(`/v1/batch-predict?model=${model}`)
      .set('content-type', 'application/x-ndjson')
      .send(ndjson(rows));
    expect(response.status).toBe(202);
    return String(response.body.jobId);
  }

  async function jsonResults(id: string): Promise<JsonResult[]> {
    const response = await request(stack.url).get(`/v1/batch-result/${id}/results?format=json&limit=10000`);
    expect(response.status).toBe(200);
    return response.body.results as JsonResult[];
  }

  async function parquetRows(body: Buffer): Promise<Record<string, unknown>[]> {
    const file = path.join(tmp, `${Math.random().toString(36).slice(2)}.parquet`);
    writeFileSync(file, body);
    const reader = await db.runAndReadAll(
      `SELECT * EXCLUDE (file_row_number) FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`,
    );
    return reader.getRowObjectsJS();
  }

  async function parquetFacts(body: Buffer): Promise<{ groups: number[]; types: Record<string, string> }> {
    const file = path.join(tmp, `${Math.random().toString(36).slice(2)}.parquet`);
    writeFileSync(file, body);
    const groups = await db.runAndReadAll(
      `SELECT row_group_id, any_value(row_group_num_rows) AS n FROM parquet_metadata('${file}') ` +
        'GROUP BY row_group_id ORDER BY row_group_id',
    );
    const described = await db.runAndReadAll(`SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM read_parquet('${file}'))`);
    return {
      groups: groups.getRowObjectsJS().map((r) => Number(r.n)),
      types: Object.fromEntries(described.getRowObjectsJson().map((r) => [r.column_name as string, r.column_type as string])),
    };
  }

  beforeAll(async () => {
    copy = copyModels(['iris/1', 'iris/2']);
    writeModels(copy);
    tmp = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-columnar-'));
    // No worker while submitting, so that a chunk's input can be spoiled before anything runs.
    stack = await startStack({ MODELS_DIR: copy.dir, CHUNK_SIZE: String(CHUNK_SIZE), JOB_ATTEMPTS: '1' }, false);
    jobs.iris = { id: await submit('iris', irisRows(37)), rows: 37 };
    jobs.spoiled = { id: await submit('iris', irisRows(20)), rows: 20 };
    jobs.scale = {
      id: await submit(
        'scale',
        Array.from({ length: 11 }, (_, i) => ({ id: i, a: i / 3, b: -i * 7.25 })),
      ),
      rows: 11,
    };
    jobs.pick = {
      id: await submit(
        'pick',
        Array.from({ length: 12 }, (_, i) => ({ id: `p${i}`, k: [0, 1, -1, 3][i % 4] })),
      ),
      rows: 12,
    };
    const grids = Array.from({ length: 10 }, (_, i) => ({
      id: i,
      grid: [
        [i, 1, 2],
        [3, 4.5, -i],
      ],
    }));
    jobs.grid = { id: await submit('grid', grids), rows: 10 };
    jobs.gridjson = { id: await submit('gridjson', grids), rows: 10 };
    jobs.big = { id: await submit('iris', irisRows(2000)), rows: 2000 };
    jobs.truncated = { id: await submit('iris', irisRows(3 * CHUNK_SIZE)), rows: 3 * CHUNK_SIZE };
    const keys = new RedisKeys(stack.config.REDIS_PREFIX);
    await redis.set(keys.input(jobs.spoiled.id, 1), 'garbage', 'KEEPTTL');
    worker = await startWorkerService(stack.config, createLogger('error', 'test-worker'));
    for (const job of Object.values(jobs)) {
      const done = await request(stack.url).get(`/v1/batch-result/${job.id}?wait=30`);
      expect(done.body.status).toBe('completed');
    }
    // The truncated job's chunk 2 can no longer be read once its download has begun.
    await redis.set(keys.output(jobs.truncated.id, 2), 'not a result chunk', 'KEEPTTL');
    duck = await DuckDBInstance.create(':memory:');
    db = await duck.connect();
  }, 60_000);

  afterAll(async () => {
    db?.closeSync();
    duck?.closeSync();
    await worker?.close();
    await stack?.close();
    await redis.quit();
    copy?.remove();
    rmSync(tmp, { recursive: true, force: true });
  });

  it.each([
    ['iris', undefined],
    ['spoiled', undefined],
    ['scale', undefined],
    ['pick', undefined],
    ['grid', 'list'],
    ['gridjson', 'json'],
  ] as const)(
    'when the %s job is downloaded as Arrow, then apache-arrow reads one batch per chunk whose every value is the JSON result',
    async (job, tensor) => {
      const { id, rows } = jobs[job] as { id: string; rows: number };
      const json = await jsonResults(id);

      const answer = await download(url(id), { accept: ARROW });

      expect(answer.status).toBe(200);
      expect(answer.complete).toBe(true);
      expect(answer.headers['content-type']).toBe(ARROW);
      expect(answer.headers['content-disposition']).toBe(`attachment; filename="${id}.arrow"`);
      expect(answer.body.subarray(-8)).toEqual(Buffer.from('ffffffff00000000', 'hex'));
      const table = tableFromIPC(answer.body);
      expect(table.batches.map((b) => b.numRows)).toEqual(
        Array.from({ length: Math.ceil(rows / CHUNK_SIZE) }, (_, c) => Math.min(CHUNK_SIZE, rows - c * CHUNK_SIZE)),
      );
      const model = job === 'spoiled' ? 'iris' : job;
      expectRowsEqualJson(model, arrowRows(table), json, tensor);
    },
  );

  it.each([
    ['iris', undefined],
    ['spoiled', undefined],
    ['scale', undefined],
    ['pick', undefined],
    ['grid', 'list'],
    ['gridjson', 'json'],
  ] as const)(
    'when the %s job is downloaded as Parquet, then DuckDB reads one row group per chunk whose every value is the JSON result',
    async (job, tensor) => {
      const { id, rows } = jobs[job] as { id: string; rows: number };
      const json = await jsonResults(id);

      const answer = await download(url(id), { accept: PARQUET });

      expect(answer.status).toBe(200);
      expect(answer.complete).toBe(true);
      expect(answer.headers['content-type']).toBe(PARQUET);
      expect(answer.headers['content-disposition']).toBe(`attachment; filename="${id}.parquet"`);
      const facts = await parquetFacts(answer.body);
      expect(facts.groups).toEqual(
        Array.from({ length: Math.ceil(rows / CHUNK_SIZE) }, (_, c) => Math.min(CHUNK_SIZE, rows - c * CHUNK_SIZE)),
      );
      const model = job === 'spoiled' ? 'iris' : job;
      const rowsRead = await parquetRows(answer.body);
      expectRowsEqualJson(model, rowsRead, json, tensor);
    },
  );

  it('when results are typed, then the columns are the CSV header with Utf8/FLOAT types, and failed rows carry only an error', async () => {
    const csv = await request(stack.url).get(`/v1/batch-result/${jobs.pick?.id}/results`).set('accept', 'text/csv');
    const pick = await parquetFacts((await download(url(jobs.pick?.id ?? ''), { accept: PARQUET })).body);
    const iris = await parquetFacts((await download(url(jobs.iris?.id ?? ''), { accept: PARQUET })).body);
    const grid = await parquetFacts((await download(url(jobs.grid?.id ?? ''), { accept: PARQUET })).body);
    const gridjson = await parquetFacts((await download(url(jobs.gridjson?.id ?? ''), { accept: PARQUET })).body);
    const spoiled = await jsonResults(jobs.spoiled?.id ?? '');
    const picked = await jsonResults(jobs.pick?.id ?? '');

    expect(csv.text.split('\n')[0]).toBe('id,value,error');
    expect(pick.types).toEqual({ id: 'VARCHAR', value: 'FLOAT', error: 'VARCHAR' });
    expect(iris.types).toEqual({
      id: 'VARCHAR',
      label: 'VARCHAR',
      confidence: 'FLOAT',
      p_setosa: 'FLOAT',
      p_versicolor: 'FLOAT',
      p_virginica: 'FLOAT',
      error: 'VARCHAR',
    });
    expect(grid.types).toEqual({ id: 'VARCHAR', out: 'FLOAT[]', error: 'VARCHAR' });
    expect(gridjson.types).toEqual({ id: 'VARCHAR', out: 'VARCHAR', error: 'VARCHAR' });
    // The comparisons above cover failed rows: a whole chunk (spoiled's chunk 1) and single rows amid good ones (pick).
    expect(spoiled.slice(CHUNK_SIZE, 2 * CHUNK_SIZE).every((r) => r.error?.code === 'OB_ERR_INFERENCE_FAILED')).toBe(true);
    expect(spoiled.filter((r) => r.error)).toHaveLength(CHUNK_SIZE);
    expect(picked.map((r) => (r.error ? 'failed' : 'ok'))).toEqual(
      Array.from({ length: 12 }, (_, i) => (i % 4 === 1 || i % 4 === 3 ? 'failed' : 'ok')),
    );
  });

  it('when ?format= names a format, then it overrides Accept (arrow, parquet, csv, ndjson, json)', async () => {
    const id = jobs.scale?.id ?? '';

    const arrow = await download(url(id, '?format=arrow'), { accept: 'text/csv' });
    const parquet = await download(url(id, '?format=parquet'), { accept: ARROW });
    const csv = await download(url(id, '?format=csv'), { accept: PARQUET });
    const lines = await download(url(id, '?format=ndjson'), { accept: 'application/json' });
    const page = await download(url(id, '?format=json&limit=3'), { accept: ARROW });

    expect(arrow.headers['content-type']).toBe(ARROW);
    expect(tableFromIPC(arrow.body).numRows).toBe(11);
    expect(parquet.headers['content-type']).toBe(PARQUET);
    expect(parquet.body.subarray(0, 4).toString()).toBe('PAR1');
    expect(parquet.body.subarray(-4).toString()).toBe('PAR1');
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.body.toString().split('\n')[0]).toBe('id,low,high,error');
    expect(lines.headers['content-type']).toBe('application/x-ndjson');
    expect(lines.body.toString().trim().split('\n')).toHaveLength(11);
    expect(page.headers['content-type']).toMatch(/^application\/json/);
    expect((JSON.parse(page.body.toString()) as { results: unknown[] }).results).toHaveLength(3);
  });

  it('when ?format= is unknown, then 400 problem+json names the format field', async () => {
    const response = await request(stack.url).get(`/v1/batch-result/${jobs.scale?.id}/results?format=xlsx`);

    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({ code: 'OB_ERR_INVALID_REQUEST', errors: [{ field: 'format' }] });
    expect(response.body.detail).toContain("'format'");
  });

  it('when Accept names no format there is, then 406 lists all five media types', async () => {
    const response = await request(stack.url).get(`/v1/batch-result/${jobs.scale?.id}/results`).set('accept', 'application/xml');

    expect(response.status).toBe(406);
    expect(response.body.code).toBe('OB_ERR_NOT_ACCEPTABLE');
    for (const type of ['application/json', 'application/x-ndjson', 'text/csv', ARROW, PARQUET])
      expect(response.body.detail).toContain(type);
  });

  it.each([
    ['Arrow', ARROW],
    ['Parquet', PARQUET],
  ])(
    'when a client aborts a %s download after its first bytes, then the api stops reading chunks and serves the same download whole',
    async (_name, accept) => {
      const { id, rows } = jobs.big as { id: string; rows: number };
      const reads = jest.spyOn(JobStore.prototype, 'readResults');
      await new Promise<void>((resolve, reject) => {
        const req = http.get(url(id), { headers: { accept }, agent: false }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? resolve() : reject(error)));
      });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const readsBeforeAbort = reads.mock.calls.filter(([job]) => job === id).length;
      reads.mockRestore();

      const again = await download(url(id), { accept });

      expect(readsBeforeAbort).toBeGreaterThan(0);
      expect(readsBeforeAbort).toBeLessThan(Math.ceil(rows / CHUNK_SIZE));
      expect(again.status).toBe(200);
      expect(again.complete).toBe(true);
      const read = accept === ARROW ? tableFromIPC(again.body).numRows : (await parquetRows(again.body)).length;
      expect(read).toBe(rows);
      expect((await request(stack.url).get('/livez')).status).toBe(200);
    },
  );

  it('when a stored chunk cannot be read after an Arrow download began, then the body is cut short, no end-of-stream marker', async () => {
    const { id } = jobs.truncated as { id: string };

    const answer = await download(url(id), { accept: ARROW });

    expect(answer.status).toBe(200);
    expect(answer.complete).toBe(false);
    expect(answer.body.subarray(-8)).not.toEqual(Buffer.from('ffffffff00000000', 'hex'));
    expect((await request(stack.url).get('/livez')).status).toBe(200);
  });

  it('when a stored chunk cannot be read after a Parquet download began, then the body is cut short and DuckDB refuses it', async () => {
    const { id } = jobs.truncated as { id: string };

    const answer = await download(url(id), { accept: PARQUET });

    expect(answer.status).toBe(200);
    expect(answer.complete).toBe(false);
    expect(answer.body.subarray(-4).toString()).not.toBe('PAR1');
    await expect(parquetRows(answer.body)).rejects.toThrow();
  });

  it('when the OpenAPI document describes the results route, then it lists the Arrow and Parquet media types and `format`', async () => {
    const doc = (await request(stack.url).get('/openapi.json')).body as {
      paths: Record<
        string,
        {
          get: {
            parameters: { name: string; schema: { enum?: string[] } }[];
            responses: Record<string, { content: Record<string, { schema: unknown }> }>;
          };
        }
      >;
    };
    const operation = doc.paths['/v1/batch-result/{id}/results']?.get;

    expect(operation?.responses['200']?.content[ARROW]?.schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(operation?.responses['200']?.content[PARQUET]?.schema).toMatchObject({ type: 'string', format: 'binary' });
    expect(operation?.parameters.find((p) => p.name === 'format')?.schema.enum).toEqual(['json', 'ndjson', 'csv', 'arrow', 'parquet']);
  });
});
