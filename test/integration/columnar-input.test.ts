import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import {
  Binary,
  CompressionType,
  Dictionary,
  Field,
  FixedSizeBinary,
  FixedSizeList,
  Float32,
  Int32,
  Int64,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Table,
  Utf8,
  compressionRegistry,
  makeData,
  makeVector,
  tableFromArrays,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
  type Vector,
} from 'apache-arrow';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import type { ModelManifest } from '@onnx-batch/contracts';
import { arrowColumnBatches } from '@onnx-batch/shared';
import { keysWithPrefix, MODELS_DIR, newRedis } from '../helpers/env';
import { compareWithGolden, loadGolden, type ClassificationResult } from '../helpers/golden';
import { waitForJob } from '../helpers/http';
import { startStack, type Stack } from '../helpers/stack';

/**
 * Arrow IPC and Parquet in: files written by independent implementations (apache-arrow, DuckDB),
 * results compared with the same rows sent as JSON, and every trap of the formats driven: a
 * stream cut at a batch boundary or without its end marker, nulls, dictionaries, BigInt ids,
 * wrong types, compression, a huge row group, a client gone mid-upload.
 */
const ARROW = 'application/vnd.apache.arrow.stream';
const PARQUET = 'application/vnd.apache.parquet';

let stack: Stack;
let spoolDir: string;
let work: string;
let duck: DuckDBConnection;
const redis = newRedis();

beforeAll(async () => {
  spoolDir = mkdtempSync(path.join(tmpdir(), 'ob-spool-'));
  work = mkdtempSync(path.join(tmpdir(), 'ob-columnar-'));
  stack = await startStack({ SPOOL_DIR: spoolDir, PARQUET_MAX_ROW_GROUP_BYTES: '1000000', CHUNK_SIZE: '1000' });
  duck = await (await DuckDBInstance.create(':memory:')).connect();
});

afterAll(async () => {
  duck.closeSync();
  await stack.close();
  await redis.quit();
  rmSync(spoolDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

async function post(
  model: string,
  type: string,
  body: Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${stack.url}/v1/batch-predict?model=${model}`, {
    method: 'POST',
    headers: { 'content-type': type, ...headers },
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** Submits, waits, and answers every result line. */
async function run(
  model: string,
  type: string,
  body: Uint8Array,
  headers: Record<string, string> = {},
): Promise<Record<string, unknown>[]> {
  const accepted = await post(model, type, body, headers);
  expect(accepted).toMatchObject({ status: 202 });
  const job = await waitForJob(stack.url, String(accepted.body.jobId));
  expect(job.status).toBe('completed');
  const text = await (
    await fetch(`${stack.url}/v1/batch-result/${String(accepted.body.jobId)}/results`, { headers: { accept: 'application/x-ndjson' } })
  ).text();
  return text
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const jobKeys = async (): Promise<number> => (await keysWithPrefix(redis, `${stack.config.REDIS_PREFIX}:job`)).length;

/** A refusal that queued nothing. */
async function refused(
  model: string,
  type: string,
  body: Uint8Array,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const before = await jobKeys();
  const answer = await post(model, type, body, headers);
  expect(await jobKeys()).toBe(before);
  return answer;
}

function irisColumns(n: number): Record<string, Float32Array> {
  const f = (k: number): Float32Array => Float32Array.from({ length: n }, (_, i) => 0.5 + ((i * (k + 3)) % 70) / 10);
  return { sepal_length: f(0), sepal_width: f(1), petal_length: f(2), petal_width: f(3) };
}

function irisJsonRows(columns: Record<string, Float32Array>, ids: (string | number)[]): string {
  return ids
    .map((id, i) =>
      JSON.stringify({ id, ...Object.fromEntries(Object.entries(columns).map(([name, values]) => [name, values[i] as number])) }),
    )
    .join('\n');
}

/**
 * An IPC stream of `batchRows`-row batches, and where each batch ends in it (the stream of the
 * first k batches is this one's prefix, plus its 8-byte end marker), so tests can cut it there.
 */
function streamOf(table: Table, batchRows: number): { bytes: Uint8Array; batchEnds: number[] } {
  const batches: RecordBatch[] = [];
  for (let start = 0; start < table.numRows; start += batchRows) batches.push(...table.slice(start, start + batchRows).batches);
  const bytes = tableToIPC(new Table(batches), 'stream');
  const batchEnds = batches.map((_, k) => tableToIPC(new Table(batches.slice(0, k + 1)), 'stream').byteLength - 8);
  return { bytes, batchEnds };
}

describe('Arrow IPC stream in', () => {
  it('when iris rows come as Arrow with BigInt ids and mixed widths, then the results equal those of the same rows as NDJSON', async () => {
    const n = 2500;
    const columns = irisColumns(n);
    const ids = Array.from({ length: n }, (_, i) => 9_000_000_000 + i);
    const table = new Table({
      id: makeVector(BigInt64Array.from(ids, BigInt)),
      sepal_length: makeVector(Float64Array.from(columns.sepal_length as Float32Array)),
      sepal_width: makeVector(columns.sepal_width as Float32Array),
      petal_length: makeVector(columns.petal_length as Float32Array),
      petal_width: makeVector(columns.petal_width as Float32Array),
    });
    const arrow = await run('iris', ARROW, streamOf(table, 700).bytes);
    const json = await run('iris', 'application/x-ndjson', Buffer.from(irisJsonRows(columns, ids)));
    expect(arrow).toHaveLength(n);
    expect(arrow).toEqual(json);
    expect(arrow[0]).toMatchObject({ id: 9_000_000_000 });
  });

  it('when Fashion-MNIST images come as FixedSizeBinary, Binary or FixedSizeList<float32>, then each matches the golden', async () => {
    const golden = loadGolden('fashion', '1');
    const images = golden.inputs.map((input) => Uint8Array.from((input.image as number[][]).flat()));
    const flat = Buffer.concat(images);
    const n = images.length;
    const fixedBinary = makeData({ type: new FixedSizeBinary(784), length: n, nullCount: 0, data: flat });
    const offsets = Int32Array.from({ length: n + 1 }, (_, i) => i * 784);
    const binary = makeData({ type: new Binary(), length: n, nullCount: 0, valueOffsets: offsets, data: flat });
    const floats = makeData({ type: new Float32(), length: n * 784, nullCount: 0, data: Float32Array.from(flat) });
    const list = makeData({ type: new FixedSizeList(784, new Field('pixel', new Float32())), length: n, nullCount: 0, child: floats });
    const labels = manifestOf('fashion').result.labels ?? [];
    for (const data of [fixedBinary, binary, list]) {
      const results = await run('fashion', ARROW, tableToIPC(new Table({ image: makeVector(data as never) as Vector }), 'stream'));
      const { maxDiff, labelMismatches } = compareWithGolden(results as unknown as ClassificationResult[], golden, labels);
      expect(labelMismatches).toEqual([]);
      expect(maxDiff).toBeLessThan(1e-4);
    }
  });

  it('when spam texts come as Utf8 and as a dictionary-encoded column, then both match the golden labels', async () => {
    const golden = loadGolden('spam', '1');
    const texts = golden.inputs.map((input) => String(input.text));
    const dictionary = vectorFromArray(texts, new Dictionary(new Utf8(), new Int32()));
    for (const column of [vectorFromArray(texts, new Utf8()), dictionary]) {
      const results = await run('spam', ARROW, tableToIPC(new Table({ text: column }), 'stream'));
      expect(results.map((r) => r.label)).toEqual(golden.labels);
    }
  });

  it('when the body is gzip-compressed, or its batches ZSTD-compressed, then it runs; LZ4 batches are refused by name', async () => {
    const columns = irisColumns(300);
    const table = tableFromArrays(columns);
    const plain = tableToIPC(table, 'stream');
    expect(await run('iris', ARROW, gzipSync(plain), { 'content-encoding': 'gzip' })).toHaveLength(300);

    // Encoders for the test's writer only (the service registers its own decoders): Debian's zstd and lz4.
    const zstd = compressionRegistry.get(CompressionType.ZSTD);
    const lz4 = compressionRegistry.get(CompressionType.LZ4_FRAME);
    compressionRegistry.set(CompressionType.ZSTD, { ...zstd, encode: (data) => spawnSync('zstd', ['-q', '-c'], { input: data }).stdout });
    compressionRegistry.set(CompressionType.LZ4_FRAME, {
      ...lz4,
      encode: (data) => spawnSync('lz4', ['-q', '-c'], { input: data }).stdout,
    });
    const compressed = (type: CompressionType): Uint8Array => {
      const writer = new RecordBatchStreamWriter({ compressionType: type });
      writer.writeAll(table);
      return writer.toUint8Array(true);
    };
    const zstdStream = compressed(CompressionType.ZSTD);
    const lz4Stream = compressed(CompressionType.LZ4_FRAME);
    const json = await run('iris', 'application/x-ndjson', Buffer.from(irisJsonRows(columns, [...Array(300).keys()])));
    const fromZstd = await run('iris', ARROW, zstdStream);
    expect(fromZstd.map((r) => r.probabilities)).toEqual(json.map((r) => r.probabilities));
    const answer = await refused('iris', ARROW, lz4Stream);
    expect(answer.status).toBe(400);
    expect(String(answer.body.detail)).toMatch(/LZ4-compressed, which is not accepted.*ZSTD/);
  });

  it('when a stream is cut at a batch boundary, lacks its end marker, or holds two streams, then 400 and nothing is queued', async () => {
    const table = tableFromArrays(irisColumns(3000));
    const { bytes, batchEnds } = streamOf(table, 1000);
    const cutAtBatch = await refused('iris', ARROW, bytes.subarray(0, batchEnds[1]));
    expect(cutAtBatch.status).toBe(400);
    expect(String(cutAtBatch.body.detail)).toMatch(/ends without its end-of-stream marker/);
    const withoutEnd = await refused('iris', ARROW, bytes.subarray(0, bytes.length - 8));
    expect(withoutEnd.status).toBe(400);
    const midBatch = await refused('iris', ARROW, bytes.subarray(0, (batchEnds[0] as number) + 100));
    expect(midBatch.status).toBe(400);
    const twice = await refused('iris', ARROW, Buffer.concat([bytes, bytes]));
    expect(twice).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/more than one Arrow stream/) as unknown } });
    const garbage = await refused('iris', ARROW, Buffer.from('{"sepal_length": 1}\n'));
    expect(garbage).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/not a readable Arrow IPC stream/) as unknown } });
    expect((await refused('iris', ARROW, new Uint8Array(0))).status).toBe(400);
  });

  it('when a declared row count (Content-Rows or schema metadata rows) differs from the stream, then 400 names it', async () => {
    const table = tableFromArrays(irisColumns(500));
    const bytes = tableToIPC(table, 'stream');
    expect(await refused('iris', ARROW, bytes, { 'content-rows': '501' })).toMatchObject({
      status: 400,
      body: { errors: [{ field: 'Content-Rows', message: 'the upload declared 501 rows but holds 500' }] },
    });
    const declared = await post('iris', ARROW, bytes, { 'content-rows': '500' });
    expect(declared.status).toBe(202);
    // Let it finish: the refusals below count the job keys, which a running job still changes.
    expect((await waitForJob(stack.url, String(declared.body.jobId))).status).toBe('completed');
    expect((await refused('iris', ARROW, bytes, { 'content-rows': 'many' })).status).toBe(400);
    const schema = new Schema(table.schema.fields, new Map([['rows', '499']]));
    const withMetadata = new Table(table.batches.map((b) => new RecordBatch(schema, b.data)));
    expect(await refused('iris', ARROW, tableToIPC(withMetadata, 'stream'))).toMatchObject({
      status: 400,
      body: { errors: [{ field: 'Content-Rows' }] },
    });
  });

  it('when a column is null, NaN, out of bounds, of the wrong type, missing or unknown, then 400 names column and row', async () => {
    const columns = irisColumns(2500);
    (columns.petal_width as Float32Array)[2100] = 42;
    const bounds = await refused('iris', ARROW, streamOf(tableFromArrays(columns), 1000).bytes);
    expect(bounds).toMatchObject({
      status: 400,
      body: { code: 'OB_ERR_INVALID_ROWS', errors: [{ row: 2100, field: 'petal_width', message: 'must be <= 10' }] },
    });

    (columns.petal_width as Float32Array)[2100] = NaN;
    const nan = await refused('iris', ARROW, tableToIPC(tableFromArrays(columns), 'stream'));
    expect(nan.body.errors).toEqual([{ row: 2100, field: 'petal_width', message: 'must be a finite number, not NaN' }]);

    const withNull = vectorFromArray([1.5, null, 2.5], new Float32());
    const three = { sepal_length: withNull, sepal_width: withNull, petal_length: withNull, petal_width: withNull };
    const nulls = await refused('iris', ARROW, tableToIPC(new Table(three), 'stream'));
    expect(nulls.body.errors).toEqual([{ row: 1, field: 'sepal_length', message: 'is null; every feature needs a value' }]);

    const text = { ...irisColumns(3), petal_width: vectorFromArray(['a', 'b', 'c'], new Utf8()) };
    const wrongType = await refused('iris', ARROW, tableToIPC(new Table({ ...mapVectors(text) }), 'stream'));
    expect(wrongType.body).toMatchObject({
      errors: [{ field: 'petal_width', message: 'must be numeric (any integer or float width), not Utf8' }],
    });

    const { petal_width: _dropped, ...three_columns } = irisColumns(3);
    const missing = await refused('iris', ARROW, tableToIPC(tableFromArrays(three_columns), 'stream'));
    expect(missing.body).toMatchObject({
      detail: "column 'petal_width' is missing; nothing was queued",
      errors: [{ field: 'petal_width', message: 'is missing' }],
    });
    const extra = await refused(
      'iris',
      ARROW,
      tableToIPC(tableFromArrays({ ...irisColumns(3), colour: Float32Array.of(1, 2, 3) }), 'stream'),
    );
    expect(extra.body.errors).toMatchObject([{ field: 'colour' }]);

    const shortImage = makeData({ type: new FixedSizeBinary(100), length: 1, nullCount: 0, data: new Uint8Array(100) });
    const wrongSize = await refused(
      'fashion',
      ARROW,
      tableToIPC(new Table({ image: makeVector(shortImage as never) as Vector }), 'stream'),
    );
    expect(String((wrongSize.body.errors as { message: string }[])[0]?.message)).toMatch(
      /FixedSizeList of 784 numbers, FixedSizeBinary\(784\)/,
    );

    const bigId = await refused(
      'iris',
      ARROW,
      tableToIPC(new Table({ ...mapVectors(irisColumns(1)), id: vectorFromArray([2n ** 60n], new Int64()) }), 'stream'),
    );
    expect(bigId.body.errors).toEqual([{ row: 0, field: 'id', message: 'is 1152921504606846976, beyond 2^53; send such ids as text' }]);
  });

  it('when the reader is handed an object-mode stream, then it refuses instead of reading nothing', async () => {
    const manifest = manifestOf('iris');
    const objects = Readable.from([tableToIPC(tableFromArrays(irisColumns(3)), 'stream')], { objectMode: true });
    await expect(arrowColumnBatches(objects, manifest).next()).rejects.toThrow(/must be read from bytes, not objects/);
  });
});

function manifestOf(model: string): ModelManifest {
  return JSON.parse(readFileSync(path.join(MODELS_DIR, model, '1', 'model.json'), 'utf8')) as ModelManifest;
}

function mapVectors(columns: Record<string, Float32Array | Vector>): Record<string, Vector> {
  return Object.fromEntries(Object.entries(columns).map(([k, v]) => [k, v instanceof Float32Array ? makeVector(v) : v]));
}

describe('Parquet in', () => {
  async function duckParquet(name: string, select: string, options = ''): Promise<Uint8Array> {
    const file = path.join(work, name);
    await duck.run(`COPY (${select}) TO '${file}' (FORMAT parquet${options})`);
    return readFileSync(file);
  }

  const IRIS_SELECT = (n: number): string =>
    `SELECT i AS id, (0.5 + (i * 3 % 70) / 10)::DOUBLE AS sepal_length, (0.5 + (i * 4 % 70) / 10)::FLOAT AS sepal_width,
            (0.5 + (i * 5 % 70) / 10)::DOUBLE AS petal_length, (i % 3)::INTEGER AS petal_width FROM range(${n}) t(i)`;

  it('when DuckDB writes iris rows in several row groups, then the results equal those of the same rows as NDJSON', async () => {
    const n = 5000;
    const file = await duckParquet('iris.parquet', IRIS_SELECT(n), ', ROW_GROUP_SIZE 2048');
    const parquet = await run('iris', PARQUET, file);
    const rows = await duck.runAndReadAll(`SELECT * FROM read_parquet('${path.join(work, 'iris.parquet')}') ORDER BY id`);
    const ndjson = rows
      .getRowObjectsJson()
      .map((row) => JSON.stringify({ ...row, id: Number(row.id) }))
      .join('\n');
    expect(parquet).toEqual(await run('iris', 'application/x-ndjson', Buffer.from(ndjson)));
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  it('when images come as a BLOB column and as a FLOAT list, then each matches the golden outputs', async () => {
    const golden = loadGolden('fashion', '1');
    const hex = golden.inputs.map((input) => Buffer.from((input.image as number[][]).flat()).toString('hex'));
    const values = hex.map((h, i) => `(${i}, from_hex('${h}'))`).join(',');
    await duck.run(`CREATE OR REPLACE TABLE images AS SELECT * FROM (VALUES ${values}) v(id, image)`);
    const blob = await duckParquet('images.parquet', 'SELECT id, image FROM images ORDER BY id');
    expect((await run('fashion', PARQUET, blob)).map((r) => r.label)).toEqual(golden.labels);
    const lists = golden.inputs.map((input, i) => `(${i}, [${(input.image as number[][]).flat().join(',')}]::FLOAT[])`).join(',');
    const listFile = await duckParquet('image-lists.parquet', `SELECT * FROM (VALUES ${lists}) v(id, image) ORDER BY id`);
    expect((await run('fashion', PARQUET, listFile)).map((r) => r.label)).toEqual(golden.labels);
  });

  it('when a row group is larger than PARQUET_MAX_ROW_GROUP_BYTES, then 413 names the cap and how to rewrite the file', async () => {
    const file = await duckParquet('huge.parquet', IRIS_SELECT(60_000), ', ROW_GROUP_SIZE 60000, COMPRESSION uncompressed');
    const answer = await refused('iris', PARQUET, file);
    expect(answer.status).toBe(413);
    expect(String(answer.body.detail)).toMatch(
      /row group 0 takes \d+ bytes uncompressed, more than the limit of 1000000 \(PARQUET_MAX_ROW_GROUP_BYTES\); rewrite/,
    );
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  it('when a Parquet column holds a null, the wrong type or the file is not Parquet, then 400 names it and nothing is queued', async () => {
    const nulls = await duckParquet(
      'nulls.parquet',
      `SELECT * REPLACE (CASE WHEN id = 7 THEN NULL ELSE sepal_width END AS sepal_width) FROM (${IRIS_SELECT(20)})`,
    );
    expect((await refused('iris', PARQUET, nulls)).body.errors).toEqual([
      { row: 7, field: 'sepal_width', message: 'is null; every feature needs a value' },
    ]);
    const text = await duckParquet('text.parquet', `SELECT * REPLACE (sepal_width::VARCHAR AS sepal_width) FROM (${IRIS_SELECT(5)})`);
    expect((await refused('iris', PARQUET, text)).body.errors).toEqual([
      { row: 0, field: 'sepal_width', message: 'must be a number, not string' },
    ]);
    const notParquet = await refused('iris', PARQUET, Buffer.from('PAR1 but not really'));
    expect(notParquet).toMatchObject({ status: 400, body: { detail: expect.stringMatching(/not a readable Parquet file/) as unknown } });
    expect(readdirSync(spoolDir)).toEqual([]);
  });

  it('when a client goes away mid-upload, then nothing is queued and the spool file is gone', async () => {
    const before = await jobKeys();
    const file = await duckParquet('partial.parquet', IRIS_SELECT(20_000));
    await new Promise<void>((resolve) => {
      const url = new URL(`${stack.url}/v1/batch-predict?model=iris`);
      const req = httpRequest({
        host: url.hostname,
        port: url.port,
        path: url.pathname + url.search,
        method: 'POST',
        headers: { 'content-type': PARQUET, 'content-length': String(file.length) },
      });
      req.on('error', () => resolve());
      req.write(file.subarray(0, file.length / 2));
      setTimeout(() => {
        // By now part of the body is on disk.
        expect(readdirSync(spoolDir).length).toBe(1);
        req.destroy();
        resolve();
      }, 300);
    });
    for (let i = 0; i < 50 && readdirSync(spoolDir).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(readdirSync(spoolDir)).toEqual([]);
    expect(await jobKeys()).toBe(before);
  });
});

describe('passthrough', () => {
  it('when an Arrow upload names passthrough columns, then every results format returns them beside the predictions', async () => {
    const n = 1500; // two chunks of CHUNK_SIZE 1000
    const table = new Table({
      ...mapVectors(irisColumns(n)),
      id: vectorFromArray(
        Array.from({ length: n }, (_, i) => `r${i}`),
        new Utf8(),
      ),
      customer: vectorFromArray(
        Array.from({ length: n }, (_, i) => (i % 7 === 0 ? null : `c-${i % 5}`)),
        new Utf8(),
      ),
      amount: makeVector(BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 1000n)),
      flag: vectorFromArray(Array.from({ length: n }, (_, i) => i % 2 === 0)),
    });
    const response = await fetch(`${stack.url}/v1/batch-predict?model=iris&passthrough=customer,amount,flag`, {
      method: 'POST',
      headers: { 'content-type': ARROW },
      body: tableToIPC(table, 'stream'),
    });
    expect(response.status).toBe(202);
    const { jobId } = (await response.json()) as { jobId: string };
    expect((await waitForJob(stack.url, jobId)).status).toBe('completed');
    const download = async (format: string): Promise<Buffer> =>
      Buffer.from(await (await fetch(`${stack.url}/v1/batch-result/${jobId}/results?format=${format}`)).arrayBuffer());

    const lines = (await download('ndjson'))
      .toString()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(n);
    expect(lines[7]).toMatchObject({ id: 'r7', passthrough: { customer: null, amount: 7000, flag: false } });
    expect(lines[1201]).toMatchObject({ id: 'r1201', passthrough: { customer: 'c-1', amount: 1_201_000, flag: false } });

    const csv = (await download('csv')).toString().split('\n');
    expect(csv[0]).toBe('id,customer,amount,flag,label,confidence,p_setosa,p_versicolor,p_virginica,error');
    expect(csv[2]).toMatch(/^r1,c-1,1000,false,/);

    for (const format of ['arrow', 'parquet']) {
      const file = path.join(work, `passthrough.${format}`);
      writeFileSync(file, await download(format));
      const reader = format === 'parquet' ? `read_parquet('${file}')` : null;
      const rows = reader
        ? (await duck.runAndReadAll(`SELECT id, customer, amount, flag, label FROM ${reader}`)).getRowObjectsJson()
        : tableFromIPCRows(readFileSync(file));
      expect(rows).toHaveLength(n);
      expect(rows[7]).toEqual({ id: 'r7', customer: null, amount: '7000', flag: 'false', label: lines[7]?.label });
      expect(rows[1201]).toEqual({ id: 'r1201', customer: 'c-1', amount: '1201000', flag: 'false', label: lines[1201]?.label });
    }
  });

  it('when passthrough is misused, then 400 names the parameter or the column and nothing is queued', async () => {
    const body = tableToIPC(new Table({ ...mapVectors(irisColumns(3)), note: vectorFromArray(['a', 'b', 'c'], new Utf8()) }), 'stream');
    const ask = async (query: string, type = ARROW, payload: Uint8Array = body): Promise<Record<string, unknown>> => {
      const before = await jobKeys();
      const r = await fetch(`${stack.url}/v1/batch-predict?model=iris&${query}`, {
        method: 'POST',
        headers: { 'content-type': type },
        body: payload,
      });
      expect(r.status).toBe(400);
      expect(await jobKeys()).toBe(before);
      return ((await r.json()) as { errors: Record<string, unknown>[] }).errors[0] ?? {};
    };
    expect(await ask('passthrough=note', 'application/x-ndjson', Buffer.from('[1,2,3,4]\n'))).toMatchObject({ field: 'passthrough' });
    expect(await ask('passthrough=label')).toMatchObject({
      field: 'passthrough',
      message: expect.stringMatching(/results have a column/) as unknown,
    });
    expect(await ask('passthrough=note,note')).toMatchObject({ field: 'passthrough' });
    expect(await ask('passthrough=colour')).toEqual({ field: 'colour', message: 'is named in passthrough but is not in the input' });
    expect(await ask('')).toMatchObject({
      field: 'note',
      message: expect.stringMatching(/name it in \?passthrough= to keep it/) as unknown,
    });
  });
});

/** An Arrow IPC file's rows as plain objects (apache-arrow, the second independent reader). */
function tableFromIPCRows(bytes: Uint8Array): Record<string, unknown>[] {
  const table = tableFromIPC(bytes);
  return Array.from({ length: table.numRows }, (_, row) => ({
    id: table.getChild('id')?.get(row) as unknown,
    customer: table.getChild('customer')?.get(row) as unknown,
    amount: table.getChild('amount')?.get(row) as unknown,
    flag: table.getChild('flag')?.get(row) as unknown,
    label: table.getChild('label')?.get(row) as unknown,
  }));
}
