import request from 'supertest';
import { QueueName } from '@onnx-batch/shared';
import { startStack, type Stack } from '../helpers/stack';

const ADMIN_KEY = 'ops-admin-key-0123456789';
const USER_KEY = 'ops-user-key-0123456789';

describe('Bull Board at /admin/queues', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: `ops:${ADMIN_KEY}:read+submit+admin,acme:${USER_KEY}` }, false);
  });

  afterAll(async () => {
    await stack.close();
  });

  it('when an admin key opens it, then the board lists every queue of the contract, chunks and batches included', async () => {
    // Act
    const page = await request(stack.url).get('/admin/queues').set('authorization', `Bearer ${ADMIN_KEY}`);
    const api = await request(stack.url).get('/admin/queues/api/queues').set('x-api-key', ADMIN_KEY);

    // Assert
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['x-powered-by']).toBeUndefined();
    expect(api.status).toBe(200);
    const names = (api.body as { queues: { name: string }[] }).queues.map((q) => q.name);
    expect(names).toEqual(expect.arrayContaining([QueueName.Chunks, QueueName.Batches]));
    expect(names.sort()).toEqual(Object.values(QueueName).sort());
  });

  it('when a key without the admin role asks for it or its API, then 403 problem+json', async () => {
    const page = await request(stack.url).get('/admin/queues').set('authorization', `Bearer ${USER_KEY}`);
    const api = await request(stack.url).put('/admin/queues/api/queues/chunks/clean/failed').set('authorization', `Bearer ${USER_KEY}`);

    for (const response of [page, api]) {
      expect(response.status).toBe(403);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.code).toBe('OB_ERR_FORBIDDEN');
    }
  });

  it('when no key is sent, then 401 problem+json, static assets included', async () => {
    const page = await request(stack.url).get('/admin/queues');
    const asset = await request(stack.url).get('/admin/queues/static/js/main.js');

    for (const response of [page, asset]) {
      expect(response.status).toBe(401);
      expect(response.body.code).toBe('OB_ERR_UNAUTHORIZED');
    }
  });

  it('when keys are configured, then /metrics, /openapi.json and /docs stay open like the health routes', async () => {
    expect((await request(stack.url).get('/metrics')).status).toBe(200);
    expect((await request(stack.url).get('/openapi.json')).status).toBe(200);
    expect((await request(stack.url).get('/docs/')).status).toBe(200);
  });
});
