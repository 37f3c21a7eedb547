import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { gzipSync, deflateSync, brotliCompressSync } from 'node:zlib';
import request from 'supertest';
import { PROBLEM_CONTENT_TYPE } from '@onnx-batch/contracts';
import { servedRoutes } from '../helpers/routes';
import { startStack, type Stack } from '../helpers/stack';

/** HTTP as clients expect it: 405 with Allow, gzip request bodies, early refusal of streamed uploads. */

const MAX_BODY_BYTES = 64 * 1024;
const MAX_STREAM_BYTES = 1024 * 1024;
const JOB_ID = '0b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
const ROW = [5.1, 3.5, 1.4, 0.2];
const CSV_HEADER = 'sepal_length,sepal_width,petal_length,petal_width';
/** How long an answer that should come at once may take before the test calls it missing. */
const ANSWER_DEADLINE_MS = 5000;

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
  /** Whether the client had ended its request when the answer came. */
  requestEnded: boolean;
}

/**
 * Sends a streamed POST that writes `parts` and then leaves the request open (never ends it):
 * resolves with the answer, or rejects when none comes within ANSWER_DEADLINE_MS.
 */
function openUpload(url: string, headers: Record<string, string>, parts: (string | Buffer)[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers, agent: false });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer within ${ANSWER_DEADLINE_MS} ms while the request was still open`));
    }, ANSWER_DEADLINE_MS);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
          requestEnded: req.writableEnded,
        });
        req.destroy();
      });
    });
    // Writes the server refuses to take once it has answered fail here; the answer is what counts.
    req.on('error', () => undefined);
    for (const part of parts) req.write(part);
  });
}

/** A POST of exact bytes (supertest would serialise a Buffer sent as application/json). */
function post(
  url: string,
  headers: Record<string, string>,
  body: Buffer,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** `count` gzip members of 64 MiB of newlines each, concatenated (a valid gzip stream): ~64 KB apiece. */
function zipBomb(count: number): Buffer {
  const member = gzipSync(Buffer.alloc(64 * 1024 * 1024, '\n'));
  return Buffer.concat(Array.from({ length: count }, () => member));
}

describe('HTTP semantics against an in-process API (real Redis, no worker)', () => {
  let stack: Stack;
  let schedulesRoot: string;

  beforeAll(async () => {
    // Schedules on, so that their routes are in the table too.
    schedulesRoot = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-http-schedules-'));
    stack = await startStack(
      { SCHEDULES_ROOT: schedulesRoot, MAX_BODY_BYTES: String(MAX_BODY_BYTES), MAX_STREAM_BYTES: String(MAX_STREAM_BYTES) },
      false,
    );
  });

  afterAll(async () => {
    await stack.close();
    rmSync(schedulesRoot, { recursive: true, force: true });
  });

  const jobTotal = async (jobId: unknown): Promise<unknown> =>
    ((await request(stack.url).get(`/v1/batch-result/${String(jobId)}`)).body as { progress?: { total?: unknown } }).progress?.total;

  describe('methods', () => {
    it.each([
      ['PUT', '/v1/batch-predict', 'POST, OPTIONS'],
      ['GET', '/batch-predict', 'POST, OPTIONS'],
      ['POST', `/v1/batch-result/${JOB_ID}`, 'GET, HEAD, DELETE, OPTIONS'],
      ['DELETE', '/v1/models', 'GET, HEAD, OPTIONS'],
      ['GET', '/v1/models/iris/predict', 'POST, OPTIONS'],
      ['PATCH', '/v1/schedules/nightly', 'GET, HEAD, PUT, DELETE, OPTIONS'],
      ['POST', '/livez', 'GET, HEAD, OPTIONS'],
    ])('when %s %s is asked, then 405 problem+json with Allow: %s', async (method, url, allow) => {
      const agent = request(stack.url);
      const response = await agent[method.toLowerCase() as 'get'](url)
        .set('content-type', 'application/json')
        .send(method === 'GET' ? undefined : '{}');

      expect(response.status).toBe(405);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.headers.allow).toBe(allow);
      expect(response.body).toMatchObject({ status: 405, code: 'OB_ERR_METHOD_NOT_ALLOWED' });
      expect(response.body.detail).toContain(`${method} is not served at ${url}`);
    });

    it(
      "when every path the app's router serves is asked with a method it does not serve, then Allow lists exactly the methods " +
        'the router has for it',
      async () => {
        // Arrange: the route table as the test helper walks it, independently of the API's own walk.
        const byPath = new Map<string, Set<string>>();
        for (const route of servedRoutes(stack.api.app)) byPath.set(route.path, (byPath.get(route.path) ?? new Set()).add(route.method));
        const concrete = (p: string): string => p.replace('{id}', JOB_ID).replace('{name}', 'iris').replace('{version}', '2');

        // Act
        const wrong: string[] = [];
        for (const [p, methods] of byPath) {
          const expected = new Set([...methods, ...(methods.has('GET') ? ['HEAD'] : []), 'OPTIONS']);
          const response = await request(stack.url).trace(concrete(p));
          const allow = new Set(String(response.headers.allow).split(', '));
          if (response.status !== 405 || [...expected].sort().join() !== [...allow].sort().join())
            wrong.push(`${p}: ${response.status} Allow ${String(response.headers.allow)}, expected ${[...expected].join(', ')}`);
        }

        // Assert
        expect(byPath.size).toBeGreaterThan(15);
        expect(wrong).toEqual([]);
      },
    );

    it('when OPTIONS is asked of a known path, then 204 with Allow', async () => {
      const response = await request(stack.url).options(`/v1/batch-result/${JOB_ID}`);

      expect(response.status).toBe(204);
      expect(response.headers.allow).toBe('GET, HEAD, DELETE, OPTIONS');
    });

    it('when a GET route is asked with HEAD, then it answers as GET does, without a body', async () => {
      const response = await request(stack.url).head('/v1/models');

      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
    });

    it.each([
      ['PUT', '/v1/nothing'],
      ['DELETE', '/v3/batch-predict'], // (/v2 is the Open Inference Protocol's, answered in its own shape)
      ['POST', '/v1/batch-result'],
      ['GET', '/nothing/at/all'],
    ])('when %s %s names no route, then it stays 404', async (method, url) => {
      const response = await request(stack.url)[method.toLowerCase() as 'get'](url);

      expect(response.status).toBe(404);
      expect(response.body.code).toBe('OB_ERR_NOT_FOUND');
      expect(response.headers.allow).toBeUndefined();
    });
  });

  describe('gzip request bodies', () => {
    const JSON_TYPE = 'application/json';
    const NDJSON_TYPE = 'application/x-ndjson';
    const CSV_TYPE = 'text/csv';
    const send = (url: string, type: string, encoding: string, body: Buffer) =>
      post(`${stack.url}${url}`, { 'content-type': type, 'content-encoding': encoding }, body);
    const gzipJson = (body: unknown): Buffer => gzipSync(JSON.stringify(body));
    const ndjsonRows = (count: number): string => `${JSON.stringify(ROW)}\n`.repeat(count);
    const csvRows = (count: number): string => `${CSV_HEADER}\n${`${ROW.join(',')}\n`.repeat(count)}`;

    it('when a JSON submit is gzip-compressed, then it is accepted with all its rows', async () => {
      const response = await send('/v1/batch-predict', JSON_TYPE, 'gzip', gzipJson({ model: 'iris', inputs: [ROW, ROW, ROW] }));

      expect(response.status).toBe(202);
      expect(await jobTotal(response.body.jobId)).toBe(3);
    });

    it('when a synchronous predict body is gzip-compressed, then it is read: a bad row in it is named', async () => {
      const response = await send('/v1/models/iris/predict', JSON_TYPE, 'gzip', gzipJson({ inputs: [ROW, [5.1, 3.5, 99, 0.2]] }));

      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ row: 1, field: 'petal_length', message: 'must be <= 10' }]);
    });

    it('when a schedule body is gzip-compressed, then it is read: its missing field is named', async () => {
      const response = await send('/v1/schedules', JSON_TYPE, 'gzip', gzipJson({ name: 'nightly' }));

      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([{ field: 'cron', message: "must have required property 'cron'" }]);
    });

    it('when NDJSON and CSV uploads are gzip-compressed, then every row of each is taken', async () => {
      const ndjson = await send('/v1/batch-predict?model=iris', NDJSON_TYPE, 'gzip', gzipSync(ndjsonRows(500)));
      const csv = await send('/v1/batch-predict?model=iris', CSV_TYPE, 'GZIP', gzipSync(csvRows(300)));

      expect([ndjson.status, csv.status]).toEqual([202, 202]);
      expect(await jobTotal(ndjson.body.jobId)).toBe(500);
      expect(await jobTotal(csv.body.jobId)).toBe(300);
    });

    it('when Content-Encoding is identity, then JSON and NDJSON bodies are read as they are', async () => {
      const json = await send('/v1/batch-predict', JSON_TYPE, 'identity', Buffer.from(JSON.stringify({ model: 'iris', inputs: [ROW] })));
      const ndjson = await send('/v1/batch-predict?model=iris', NDJSON_TYPE, 'identity', Buffer.from(ndjsonRows(2)));

      expect([json.status, ndjson.status]).toEqual([202, 202]);
      expect(await jobTotal(ndjson.body.jobId)).toBe(2);
    });

    it.each([
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
      ['x-foo', (b: Buffer) => b],
      ['gzip, gzip', (b: Buffer) => gzipSync(gzipSync(b))],
    ])('when Content-Encoding is %s, then JSON, NDJSON and CSV bodies are refused with 415 naming it', async (encoding, encode) => {
      const answers = [
        await send('/v1/batch-predict', JSON_TYPE, encoding, encode(Buffer.from(JSON.stringify({ model: 'iris', inputs: [ROW] })))),
        await send('/v1/batch-predict?model=iris', NDJSON_TYPE, encoding, encode(Buffer.from(ndjsonRows(1)))),
        await send('/v1/batch-predict?model=iris', CSV_TYPE, encoding, encode(Buffer.from(csvRows(1)))),
      ];

      for (const answer of answers) {
        expect(answer.status).toBe(415);
        expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(answer.body.code).toBe('OB_ERR_UNSUPPORTED_MEDIA_TYPE');
        expect(answer.body.detail).toContain(`'${encoding}'`);
      }
    });

    it('when a gzip body is corrupt, cut short or not gzip at all, then JSON, NDJSON and CSV bodies are refused with 400', async () => {
      const corrupt = (text: string): Buffer => {
        const bytes = gzipSync(text);
        bytes.fill(0x55, 12, bytes.length - 8); // the deflate data, not the header
        return bytes;
      };
      const cut = (text: string): Buffer => gzipSync(text).subarray(0, 20);
      const plain = (text: string): Buffer => Buffer.from(text);

      const answers = [];
      for (const damage of [corrupt, cut, plain]) {
        answers.push(
          await send('/v1/batch-predict', JSON_TYPE, 'gzip', damage(JSON.stringify({ model: 'iris', inputs: [ROW, ROW, ROW, ROW] }))),
        );
        answers.push(await send('/v1/batch-predict?model=iris', NDJSON_TYPE, 'gzip', damage(ndjsonRows(20))));
        answers.push(await send('/v1/batch-predict?model=iris', CSV_TYPE, 'gzip', damage(csvRows(20))));
      }

      expect(
        answers.map((a) => [
          a.status,
          String(a.headers['content-type']).split(';')[0],
          a.body.code,
          String(a.body.detail).replace(/ \(.*/, ''),
        ]),
      ).toEqual(
        Array.from({ length: 9 }, () => [400, PROBLEM_CONTENT_TYPE, 'OB_ERR_INVALID_REQUEST', 'the request body is not valid gzip']),
      );
    });

    it('when a gzip JSON body is small but inflates past MAX_BODY_BYTES, then 413', async () => {
      const body = gzipJson({ model: 'iris', inputs: Array.from({ length: 4000 }, () => ROW) }); // ~70 KB of JSON
      expect(body.length).toBeLessThan(MAX_BODY_BYTES / 4);

      const response = await send('/v1/batch-predict', JSON_TYPE, 'gzip', body);

      expect(response.status).toBe(413);
      expect(response.body.code).toBe('OB_ERR_PAYLOAD_TOO_LARGE');
    });

    it('when a 1 MB gzip JSON body inflates to 1 GiB, then 413, and the API goes on answering', async () => {
      const bomb = zipBomb(16);
      expect(bomb.length).toBeLessThanOrEqual(MAX_STREAM_BYTES * 1.1);

      const response = await send('/v1/batch-predict', JSON_TYPE, 'gzip', bomb);

      expect(response.status).toBe(413);
      expect(response.body.code).toBe('OB_ERR_PAYLOAD_TOO_LARGE');
      expect((await request(stack.url).get('/livez')).status).toBe(200);
    });

    it('when a gzip CSV upload is small but inflates past MAX_STREAM_BYTES, then 413', async () => {
      const body = gzipSync(csvRows(80_000)); // ~1.3 MB of CSV
      expect(body.length).toBeLessThan(MAX_STREAM_BYTES / 4);

      const response = await send('/v1/batch-predict?model=iris', CSV_TYPE, 'gzip', body);

      expect(response.status).toBe(413);
      expect(response.body.code).toBe('OB_ERR_PAYLOAD_TOO_LARGE');
    });

    it(
      'when a gzip NDJSON upload inflates past MAX_STREAM_BYTES, then 413 comes while the client is still sending: the rest is ' +
        'never inflated',
      async () => {
        // 256 KB of a 1 MB bomb: 256 MiB once inflated, 256 times the limit; the request stays open.
        const bomb = zipBomb(16);

        const answer = await openUpload(
          `${stack.url}/v1/batch-predict?model=iris`,
          { 'content-type': NDJSON_TYPE, 'content-encoding': 'gzip' },
          [bomb.subarray(0, 256 * 1024)],
        );

        expect(answer.status).toBe(413);
        expect(answer.requestEnded).toBe(false);
        expect(answer.headers.connection).toBe('close');
        expect(answer.body.code).toBe('OB_ERR_PAYLOAD_TOO_LARGE');
        expect(answer.body.detail).toContain(`limit of ${MAX_STREAM_BYTES} bytes`);
      },
    );
  });

  describe('invalid rows', () => {
    it(
      'when an NDJSON upload has a bad line and the client has not finished sending, then 400 naming that line comes at once ' +
        'and the connection is closed',
      async () => {
        const lines = [ROW, ROW, ROW, [5.1, 3.5, 99, 0.2]].map((r) => `${JSON.stringify(r)}\n`);

        const answer = await openUpload(`${stack.url}/v1/batch-predict?model=iris`, { 'content-type': 'application/x-ndjson' }, lines);

        expect(answer.status).toBe(400);
        expect(answer.requestEnded).toBe(false);
        expect(answer.headers.connection).toBe('close');
        expect(answer.headers['content-type']).toBe(`${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
        expect(answer.body.errors).toEqual([{ line: 4, field: 'petal_length', message: 'must be <= 10' }]);
      },
    );

    it(
      'when a CSV upload has a bad line and the client has not finished sending, then 400 naming that line comes at once and ' +
        'the connection is closed',
      async () => {
        // csv-parse takes a record as ended once it sees the byte after its line end (its delimiters
        // may be longer than one byte): the client has begun the next row, as one still sending has.
        const parts = [`${CSV_HEADER}\n`, `${ROW.join(',')}\n`, `${ROW.join(',')}\n`, '5.1,3.5,99,0.2\n', '5.'];

        const answer = await openUpload(`${stack.url}/v1/batch-predict?model=iris`, { 'content-type': 'text/csv' }, parts);

        expect(answer.status).toBe(400);
        expect(answer.requestEnded).toBe(false);
        expect(answer.headers.connection).toBe('close');
        expect(answer.body.errors).toEqual([{ line: 4, field: 'petal_length', message: 'must be <= 10' }]);
      },
    );

    it('when a JSON body has several bad rows, then 400 lists each of them', async () => {
      const inputs = [ROW, [5.1, 3.5, 99, 0.2], ROW, [5.1, 'wide', 1.4, 0.2], [-1, 3.5, 1.4, 0.2]];

      const response = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs });

      expect(response.status).toBe(400);
      expect(response.body.errors).toEqual([
        { row: 1, field: 'petal_length', message: 'must be <= 10' },
        { row: 3, field: 'sepal_width', message: 'must be number' },
        { row: 4, field: 'sepal_length', message: 'must be >= 0' },
      ]);
      expect(response.body.detail).toContain('(and 2 more errors)');
    });
  });
});

describe('HTTP methods when API keys are configured', () => {
  let stack: Stack;
  const KEY = 'acme-key-0123456789abcdef';

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: `acme:${KEY}:read` }, false);
  });

  afterAll(async () => {
    await stack.close();
  });

  it(
    'when a guarded path is asked with a method it does not serve, then 405 comes before authentication and tells nothing but ' +
      'the route table',
    async () => {
      const anonymous = await request(stack.url).put('/v1/batch-predict');
      const readOnly = await request(stack.url).delete('/v1/models').set('authorization', `Bearer ${KEY}`);

      expect(anonymous.status).toBe(405);
      expect(anonymous.headers.allow).toBe('POST, OPTIONS');
      expect(Object.keys(anonymous.body as object).sort()).toEqual(['code', 'detail', 'instance', 'status', 'title', 'type']);
      expect(readOnly.status).toBe(405);
      expect(readOnly.headers.allow).toBe('GET, HEAD, OPTIONS');
    },
  );

  it('when a guarded path is asked with a method it serves but no key, then it is still 401', async () => {
    const response = await request(stack.url).get('/v1/models');

    expect(response.status).toBe(401);
    expect(response.headers.allow).toBeUndefined();
  });
});
