import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { clearOfMinuteEnd } from '../helpers/clock';
import { startStack, type Stack } from '../helpers/stack';

const ROW = [5.1, 3.5, 1.4, 0.2];
const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const READER = 'reader-key-0123456789abcdef';
const ADMIN_FROM_FILE = 'ops-admin-key-0123456789abcdef';

function keysFile(): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-keys-'));
  const file = path.join(dir, 'keys.json');
  const sha256 = createHash('sha256').update(ADMIN_FROM_FILE).digest('hex');
  writeFileSync(file, JSON.stringify([{ tenant: 'ops', sha256, roles: ['read', 'submit', 'admin'] }]));
  return file;
}

describe('API keys, tenants and limits', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack(
      {
        API_KEYS: `acme:${ACME},globex:${GLOBEX},acme:${READER}:read`,
        API_KEYS_FILE: keysFile(),
        RATE_LIMIT_PER_MINUTE: '1000',
        MAX_ACTIVE_JOBS_PER_TENANT: '6',
      },
      false,
    );
  });

  afterAll(async () => {
    await stack.close();
  });

  const submit = (key: string, body: unknown = { model: 'iris', inputs: [ROW] }) =>
    request(stack.url)
      .post('/v1/batch-predict')
      .set('authorization', `Bearer ${key}`)
      .send(body as object);

  it('when no key is sent, then every job route answers 401 problem+json but health stays open', async () => {
    const responses = await Promise.all([
      request(stack.url)
        .post('/v1/batch-predict')
        .send({ model: 'iris', inputs: [ROW] }),
      request(stack.url).post('/batch-predict').send([ROW]),
      request(stack.url).get('/v1/models'),
      request(stack.url).get('/batch-result/0b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b'),
    ]);

    for (const response of responses) {
      expect(response.status).toBe(401);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.code).toBe('OB_ERR_UNAUTHORIZED');
    }
    expect((await request(stack.url).get('/livez')).status).toBe(200);
  });

  it('when a wrong key is sent, then 401; when a key is sent as X-API-Key or from the hashed file, then it works', async () => {
    const wrong = await submit('not-a-key-at-all-really');
    const header = await request(stack.url).get('/v1/models').set('x-api-key', GLOBEX);
    const fromFile = await request(stack.url).get('/v1/models').set('authorization', `Bearer ${ADMIN_FROM_FILE}`);

    expect(wrong.status).toBe(401);
    expect(header.status).toBe(200);
    expect(fromFile.status).toBe(200);
  });

  it('when a read-only key submits, then 403 names the missing role, but it may read', async () => {
    const response = await submit(READER);

    expect(response.status).toBe(403);
    expect(response.body).toMatchObject({ code: 'OB_ERR_FORBIDDEN' });
    expect(response.body.detail).toContain("'submit'");
    expect((await request(stack.url).get('/v1/models').set('x-api-key', READER)).status).toBe(200);
  });

  it('when another tenant asks for, cancels or deletes a job, then it gets 404 exactly as for a missing job', async () => {
    const created = await submit(ACME);
    const jobId = String(created.body.jobId);
    const missing = await request(stack.url).get('/v1/batch-result/0b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b').set('x-api-key', GLOBEX);

    const read = await request(stack.url).get(`/v1/batch-result/${jobId}`).set('x-api-key', GLOBEX);
    const cancel = await request(stack.url).post(`/v1/batch-result/${jobId}/cancel`).set('x-api-key', GLOBEX);
    const remove = await request(stack.url).delete(`/v1/batch-result/${jobId}`).set('x-api-key', GLOBEX);
    const own = await request(stack.url).get(`/v1/batch-result/${jobId}`).set('x-api-key', ACME);
    const sameTenantOtherKey = await request(stack.url).get(`/v1/batch-result/${jobId}`).set('x-api-key', READER);

    for (const response of [read, cancel, remove]) {
      expect(response.status).toBe(404);
      expect({ ...response.body, detail: '', instance: '' }).toEqual({ ...missing.body, detail: '', instance: '' });
    }
    expect(own.status).toBe(200);
    expect(sameTenantOtherKey.status).toBe(200);
  });

  it('when the same Idempotency-Key comes with the same body, then the same job answers; with another body, 409', async () => {
    const body = { model: 'iris', inputs: [ROW, ROW] };
    const first = await submit(GLOBEX, body).set('idempotency-key', 'nightly-2026-11-25');
    const again = await submit(GLOBEX, body).set('idempotency-key', 'nightly-2026-11-25');
    const different = await submit(GLOBEX, { model: 'iris', inputs: [ROW] }).set('idempotency-key', 'nightly-2026-11-25');
    const otherTenant = await submit(ACME, body).set('idempotency-key', 'nightly-2026-11-25');

    expect(first.status).toBe(202);
    expect(again.body).toEqual(first.body);
    expect(again.status).toBe(200);
    expect(different.status).toBe(409);
    expect(different.body).toMatchObject({ code: 'OB_ERR_IDEMPOTENCY_CONFLICT', jobId: first.body.jobId });
    expect(otherTenant.status).toBe(202);
    expect(otherTenant.body.jobId).not.toBe(first.body.jobId);
  });

  it('when a streamed upload repeats its Idempotency-Key and body, then the same job answers', async () => {
    const ndjson = `${JSON.stringify(ROW)}\n${JSON.stringify(ROW)}\n`;
    const post = () =>
      request(stack.url)
        .post('/v1/batch-predict?model=iris')
        .set('x-api-key', ACME)
        .set('content-type', 'application/x-ndjson')
        .set('idempotency-key', 'stream-1')
        .send(ndjson);
    const first = await post();
    const again = await post();

    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.body.jobId).toBe(first.body.jobId);
  });

  it('when a tenant reaches its unfinished-job limit, then 429 with Retry-After, and cancelling one frees a place', async () => {
    const tenantKey = ADMIN_FROM_FILE; // tenant "ops": no job yet
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push(String((await submit(tenantKey)).body.jobId));

    const refused = await submit(tenantKey);
    await request(stack.url).post(`/v1/batch-result/${ids[0]}/cancel`).set('x-api-key', tenantKey);
    const accepted = await submit(tenantKey);

    expect(refused.status).toBe(429);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.body.code).toBe('OB_ERR_TOO_MANY_ACTIVE_JOBS');
    expect(accepted.status).toBe(202);
  });

  it('when answers go out, then they carry security headers and no stack traces', async () => {
    const response = await request(stack.url)
      .post('/v1/batch-predict')
      .set('x-api-key', ACME)
      .set('content-type', 'application/json')
      .send('{"broken":');

    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-powered-by']).toBeUndefined();
    expect(JSON.stringify(response.body)).not.toMatch(/at .*\.js:\d+/);
  });
});

describe('rate limit shared through Redis', () => {
  it('when a key goes over its budget, then 429 with Retry-After, and another replica counts the same budget', async () => {
    const a = await startStack({ API_KEYS: `acme:${ACME}`, RATE_LIMIT_PER_MINUTE: '5' }, false);
    const b = await startStack({ API_KEYS: `acme:${ACME}`, RATE_LIMIT_PER_MINUTE: '5', REDIS_PREFIX: a.config.REDIS_PREFIX }, false);
    try {
      await clearOfMinuteEnd();
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) {
        const target = i % 2 === 0 ? a : b;
        statuses.push((await request(target.url).get('/v1/models').set('x-api-key', ACME)).status);
      }
      const limited = await request(a.url).get('/v1/models').set('x-api-key', ACME);

      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
      expect(limited.body.code).toBe('OB_ERR_RATE_LIMITED');
    } finally {
      await b.close();
      await a.close();
    }
  });
});

describe('without any key', () => {
  it('when no key is configured and HOST asks for every interface, then the API still listens on loopback only', async () => {
    const stack = await startStack({ HOST: '0.0.0.0' }, false);
    try {
      expect(stack.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect((await request(stack.url).get('/v1/models')).status).toBe(200);
    } finally {
      await stack.close();
    }
  });
});
