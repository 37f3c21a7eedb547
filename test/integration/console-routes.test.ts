import { createHash } from 'node:crypto';
import http from 'node:http';
import request from 'supertest';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { JobStore, newJobId, QueueName } from '@onnx-batch/shared';
import { newRedis } from '../helpers/env';
import { addFragileModel, fragileRows } from '../helpers/fragile-model';
import { queuedJobRecord } from '../helpers/job-records';
import { copyModels, type ModelsCopy } from '../helpers/model-files';
import { startPrivateRedis, type PrivateRedis } from '../helpers/private-redis';
import { startStack, type Stack } from '../helpers/stack';

// The routes a web console reads (GET /v1/batch-result/:id/failed-rows, /v1/me, /v1/workers),
// against a real stack: real Redis, a real worker and the fragile model (test/helpers/fragile-model.ts),
// whose graph fails only the rows with sepal_length >= 9.

const ACME = 'acme-submit-key-0123456789';
const ACME_READ = 'acme-read-key-0123456789ab';
const ACME_ADMIN = 'acme-admin-key-0123456789a';
const ACME_SUBMIT_ONLY = 'acme-submit-only-key-01234';
const GLOBEX = 'globex-key-0123456789abcdef';
const API_KEYS = [
  `acme:${ACME}:read+submit`,
  `acme:${ACME_READ}:read`,
  // Out of order on purpose: /v1/me answers roles in the order read, submit, admin.
  `acme:${ACME_ADMIN}:admin+submit+read`,
  `acme:${ACME_SUBMIT_ONLY}:submit`,
  `globex:${GLOBEX}`,
].join(',');
const IRIS_ROW = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };
/** 30 rows in chunks of 8: row 7 is the last of chunk 0, row 19 the fourth of chunk 2. */
const CHUNK_SIZE = 8;
const ALL_QUEUES = Object.values(QueueName).sort();

const bearer = (key: string): [string, string] => ['authorization', `Bearer ${key}`];
const keyId = (key: string): string => createHash('sha256').update(key).digest('hex').slice(0, 12);
const lines = (text: string): unknown[] =>
  text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as unknown);

/** Submits rows as acme and waits for the job to finish; answers its id and final status document. */
async function runJob(stack: Stack, body: object): Promise<{ jobId: string; status: Record<string, unknown> }> {
  const submitted = await request(stack.url)
    .post('/v1/batch-predict')
    .set(...bearer(ACME))
    .send(body);
  expect(submitted.status).toBe(202);
  const jobId = submitted.body.jobId as string;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const poll = await request(stack.url)
      .get(`/v1/batch-result/${jobId}?wait=10`)
      .set(...bearer(ACME));
    if (['completed', 'failed', 'cancelled'].includes(String(poll.body.status))) return { jobId, status: poll.body };
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish: ${JSON.stringify(poll.body)}`);
  }
}

/** A GET read to its end, or to the point where the server cut it off (`complete` false). */
function download(url: string, key: string): Promise<{ status: number; body: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { authorization: `Bearer ${key}` }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('error', () => undefined); // an aborted body: 'close' tells
      res.on('close', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), complete: res.complete }));
    });
    req.on('error', reject);
  });
}

describe('console routes, with a worker and keys', () => {
  let models: ModelsCopy;
  let fragile: { name: string; version: string };
  let stack: Stack;
  let redis: Redis;
  let store: JobStore;

  beforeAll(async () => {
    models = copyModels(['iris']);
    fragile = addFragileModel(models);
    stack = await startStack({ API_KEYS, MODELS_DIR: models.dir, CHUNK_SIZE: String(CHUNK_SIZE), RATE_LIMIT_PER_MINUTE: '100000' });
    redis = newRedis();
    store = new JobStore(redis, stack.config.REDIS_PREFIX, stack.config.RESULT_TTL_SECONDS);
  });

  afterAll(async () => {
    await redis.quit();
    await stack.close();
    models.remove();
  });

  /** A queued job of acme committed straight into the store, with no queue job: it never runs. */
  const queuedJob = async (): Promise<string> => {
    const record = queuedJobRecord({ tenant: 'acme', version: '2' });
    expect((await store.commit(record, { lastInput: Buffer.from('x') })).state).toBe('committed');
    return record.id;
  };

  describe('GET /v1/batch-result/:id/failed-rows', () => {
    let seeded: { jobId: string; status: Record<string, unknown> };

    beforeAll(async () => {
      seeded = await runJob(stack, { model: fragile.name, inputs: fragileRows(30, [7, 19]) });
    });

    it('when a 30-row job has 2 rows the model cannot run, then it completes with 2 failed rows of 30', () => {
      expect(seeded.status).toMatchObject({ status: 'completed', progress: { done: 30, total: 30, failed: 2 } });
    });

    it('when its failed rows are asked for, then exactly rows 7 and 19 come, as NDJSON lines of index, id, code and message', async () => {
      // Act
      const response = await request(stack.url)
        .get(`/v1/batch-result/${seeded.jobId}/failed-rows`)
        .set(...bearer(ACME));

      // Assert
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/x-ndjson');
      expect(response.headers['content-disposition']).toBe(`attachment; filename="${seeded.jobId}.failed.ndjson"`);
      const failed = lines(response.text) as Record<string, unknown>[];
      expect(failed).toEqual(
        [7, 19].map((index) => ({
          index,
          id: `row-${index}`,
          code: 'OB_ERR_INFERENCE_FAILED',
          message: expect.stringContaining('indices element out of data bounds'),
        })),
      );
      expect(failed.map((line) => Object.keys(line))).toEqual([
        ['index', 'id', 'code', 'message'],
        ['index', 'id', 'code', 'message'],
      ]);
      expect(response.text.endsWith('\n')).toBe(true);
    });

    it('when the failed rows are compared with the results, then they are the rows that carry an error, at the same places', async () => {
      const results = await request(stack.url)
        .get(`/v1/batch-result/${seeded.jobId}/results?format=ndjson`)
        .set(...bearer(ACME));
      const failed = await request(stack.url)
        .get(`/v1/batch-result/${seeded.jobId}/failed-rows`)
        .set(...bearer(ACME));

      const withErrors = (lines(results.text) as { id: string; error?: { code: string; message: string } }[])
        .map((line, index) => ({ index, id: line.id, ...line.error }))
        .filter((line) => line.code !== undefined);
      expect(lines(failed.text)).toEqual(withErrors);
    });

    it('when a key with only the read role asks, then it gets the same failed rows', async () => {
      const byReader = await request(stack.url)
        .get(`/v1/batch-result/${seeded.jobId}/failed-rows`)
        .set(...bearer(ACME_READ));

      expect(byReader.status).toBe(200);
      expect(lines(byReader.text).map((line) => (line as { index: number }).index)).toEqual([7, 19]);
    });

    it('when asked at the unversioned path, then the same lines come', async () => {
      const legacy = await request(stack.url)
        .get(`/batch-result/${seeded.jobId}/failed-rows`)
        .set(...bearer(ACME));

      expect(legacy.status).toBe(200);
      expect(lines(legacy.text)).toHaveLength(2);
    });

    it('when another tenant asks for the job, then 404 as for a job that does not exist, and an unknown id is 404 too', async () => {
      const other = await request(stack.url)
        .get(`/v1/batch-result/${seeded.jobId}/failed-rows`)
        .set(...bearer(GLOBEX));
      const unknown = await request(stack.url)
        .get(`/v1/batch-result/${newJobId()}/failed-rows`)
        .set(...bearer(ACME));

      for (const response of [other, unknown]) {
        expect(response.status).toBe(404);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(response.body.code).toBe('OB_ERR_JOB_NOT_FOUND');
      }
    });

    it('when no row of a job failed, then 200 with an empty body', async () => {
      const clean = await runJob(stack, { model: 'iris', inputs: [IRIS_ROW, [6.7, 3.0, 5.2, 2.3]] });

      const response = await request(stack.url)
        .get(`/v1/batch-result/${clean.jobId}/failed-rows`)
        .set(...bearer(ACME));

      expect(clean.status).toMatchObject({ status: 'completed', progress: { failed: 0 } });
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toBe('application/x-ndjson');
      expect(response.text).toBe('');
    });

    it('when the job is still queued, then 409 OB_ERR_JOB_NOT_FINISHED; once cancelled, 409 OB_ERR_JOB_CANCELLED', async () => {
      // Arrange
      const id = await queuedJob();

      // Act
      const queued = await request(stack.url)
        .get(`/v1/batch-result/${id}/failed-rows`)
        .set(...bearer(ACME));
      const cancel = await request(stack.url)
        .post(`/v1/batch-result/${id}/cancel`)
        .set(...bearer(ACME));
      const cancelled = await request(stack.url)
        .get(`/v1/batch-result/${id}/failed-rows`)
        .set(...bearer(ACME));

      // Assert
      expect(queued.status).toBe(409);
      expect(queued.body.code).toBe('OB_ERR_JOB_NOT_FINISHED');
      expect(cancel.status).toBe(200);
      expect(cancelled.status).toBe(409);
      expect(cancelled.body.code).toBe('OB_ERR_JOB_CANCELLED');
    });

    it(
      'when the first chunk cannot be read, then a 500 problem; when a later one cannot, then the body is cut off after the ' +
        'lines before it',
      async () => {
        // Arrange: two more fragile jobs, a stored chunk of each replaced by bytes that are no result chunk.
        const first = await runJob(stack, { model: fragile.name, inputs: fragileRows(30, [7, 19]) });
        const later = await runJob(stack, { model: fragile.name, inputs: fragileRows(30, [7, 19]) });
        await redis.set(store.keys.output(first.jobId, 0), 'not a result chunk', 'KEEPTTL');
        await redis.set(store.keys.output(later.jobId, 2), 'not a result chunk', 'KEEPTTL');

        // Act
        const unreadable = await request(stack.url)
          .get(`/v1/batch-result/${first.jobId}/failed-rows`)
          .set(...bearer(ACME));
        const cut = await download(`${stack.url}/v1/batch-result/${later.jobId}/failed-rows`, ACME);

        // Assert
        expect(unreadable.status).toBe(500);
        expect(unreadable.body.code).toBe('OB_ERR_INTERNAL');
        expect(cut.status).toBe(200);
        expect(cut.complete).toBe(false);
        expect(lines(cut.body).map((line) => (line as { index: number }).index)).toEqual([7]);
      },
    );
  });

  describe('GET /v1/me', () => {
    it.each([
      ['read', ACME_READ, ['read']],
      ['read+submit', ACME, ['read', 'submit']],
      ['admin+submit+read', ACME_ADMIN, ['read', 'submit', 'admin']],
    ])(
      'when the key has the roles %s, then it answers acme, those roles in order read, submit, admin, and its key id',
      async (_roles, key, roles) => {
        const response = await request(stack.url)
          .get('/v1/me')
          .set(...bearer(key));

        expect(response.status).toBe(200);
        expect(response.body).toEqual({ tenant: 'acme', roles, keyId: keyId(key), auth: 'keys' });
        expect(response.body.keyId).toMatch(/^[0-9a-f]{12}$/);
      },
    );

    it('when the key is sent as X-API-Key, then the same caller', async () => {
      const response = await request(stack.url).get('/v1/me').set('x-api-key', GLOBEX);

      expect(response.body).toEqual({ tenant: 'globex', roles: ['read', 'submit'], keyId: keyId(GLOBEX), auth: 'keys' });
    });

    it('when the key is wrong or missing, then 401; when it lacks the read role the guard asks of a GET, then 403', async () => {
      const wrong = await request(stack.url)
        .get('/v1/me')
        .set(...bearer('not-a-key-0123456789abcdef'));
      const missing = await request(stack.url).get('/v1/me');
      const submitOnly = await request(stack.url)
        .get('/v1/me')
        .set(...bearer(ACME_SUBMIT_ONLY));

      expect([wrong.status, wrong.body.code]).toEqual([401, 'OB_ERR_UNAUTHORIZED']);
      expect([missing.status, missing.body.code]).toEqual([401, 'OB_ERR_UNAUTHORIZED']);
      expect([submitOnly.status, submitOnly.body.code]).toEqual([403, 'OB_ERR_FORBIDDEN']);
    });
  });

  describe('GET /v1/workers', () => {
    it("when a worker runs, then its connections are counted on this stack's queues, as BullMQ counts them", async () => {
      // Arrange: BullMQ's own count of the stack's prefix (other tests' workers on this Redis have other prefixes).
      const connection = redis.duplicate();
      const chunks = new Queue(QueueName.Chunks, { connection, prefix: stack.config.REDIS_PREFIX });
      const expected = await chunks.getWorkersCount();
      await chunks.close();
      await connection.quit();

      // Act
      const response = await request(stack.url)
        .get('/v1/workers')
        .set(...bearer(ACME_READ));

      // Assert
      expect(response.status).toBe(200);
      const body = response.body as { connected: number; queues: { name: string; workers: number }[] };
      expect(body.queues.map((q) => q.name).sort()).toEqual(ALL_QUEUES);
      expect(body.queues.find((q) => q.name === (QueueName.Chunks as string))?.workers).toBe(expected);
      expect(expected).toBeGreaterThanOrEqual(1);
      expect(body.connected).toBe(body.queues.reduce((sum, q) => sum + q.workers, 0));
      expect(body.connected).toBeGreaterThanOrEqual(1);
    });
  });
});

describe('console routes, no worker and no keys (auth off)', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({}, false);
  });

  afterAll(async () => {
    await stack.close();
  });

  it('when no key is configured, then /v1/me answers the open caller: tenant default, every role, key id open, auth off', async () => {
    const response = await request(stack.url).get('/v1/me');

    expect(response.status).toBe(200);
    expect(response.body).toEqual({ tenant: 'default', roles: ['read', 'submit', 'admin'], keyId: 'open', auth: 'off' });
  });

  it('when no worker runs, then /v1/workers answers 0 connections on every queue of the stack', async () => {
    const response = await request(stack.url).get('/v1/workers');

    expect(response.status).toBe(200);
    expect(response.body.connected).toBe(0);
    expect([...response.body.queues].sort((a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name))).toEqual(
      ALL_QUEUES.map((name) => ({ name, workers: 0 })),
    );
  });
});

describe('GET /v1/workers when Redis refuses CLIENT LIST', () => {
  // BullMQ answers a server without CLIENT ("unknown command") with one made-up worker; an ACL refusal throws.
  const cases: [string, string[], [string, ...string[]] | null][] = [
    ['CLIENT is not a command of this server', ['--rename-command', 'CLIENT', ''], null],
    ['an ACL denies CLIENT LIST', [], ['ACL', 'SETUSER', 'default', '-client|list']],
  ];
  it.each(cases)('when %s, then 503 OB_ERR_NOT_READY rather than a count', async (_case, args, acl) => {
    // Arrange
    let redis: PrivateRedis | null = null;
    let stack: Stack | null = null;
    try {
      redis = await startPrivateRedis({ args });
      if (acl) {
        const admin = redis.client();
        await admin.call(...acl);
      }
      stack = await startStack({ REDIS_URL: redis.url }, false);

      // Act
      const response = await request(stack.url).get('/v1/workers');

      // Assert
      expect(response.status).toBe(503);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.code).toBe('OB_ERR_NOT_READY');
      expect(response.body.detail).toMatch(/^worker connections cannot be counted/);
    } finally {
      await stack?.close();
      await redis?.destroy();
    }
  });
});
