import request from 'supertest';
import { QueueName } from '@onnx-batch/shared';
import { Queue } from 'bullmq';
import { keysWithPrefix, newRedis } from '../helpers/env';
import { startStack, type Stack } from '../helpers/stack';

const VALID_ROW = { sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 };

describe('API contract against real Redis (no worker: nothing runs)', () => {
  let stack: Stack;
  const redis = newRedis();

  beforeAll(async () => {
    stack = await startStack({ MAX_BODY_BYTES: '4096' }, false);
  });

  afterAll(async () => {
    await stack.close();
    await redis.quit();
  });

  async function queuedChunks(): Promise<number> {
    // BullMQ does not close a connection it was given: this one is quit here, or it holds the jest worker open.
    const connection = redis.duplicate();
    const queue = new Queue(QueueName.Chunks, { connection, prefix: stack.config.REDIS_PREFIX });
    const counts = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed');
    await queue.close();
    await connection.quit();
    return Object.values(counts).reduce((a, b) => a + b, 0);
  }

  it('when a batch is valid, then it answers 202 with the job id, a Location header and queues it', async () => {
    const response = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [VALID_ROW, [6.7, 3.0, 5.2, 2.3]] });

    expect(response.status).toBe(202);
    expect(response.body).toEqual({
      jobId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      status: 'queued',
      resultUrl: `/v1/batch-result/${response.body.jobId}`,
    });
    expect(response.headers.location).toBe(`/v1/batch-result/${response.body.jobId}`);
    const status = await request(stack.url).get(`/v1/batch-result/${response.body.jobId}`);
    expect(status.body).toMatchObject({
      status: 'queued',
      model: { name: 'iris', version: '2' },
      progress: { done: 0, total: 2, failed: 0 },
      results: null,
      error: null,
    });
  });

  it('when one row is out of bounds, then 400 problem+json names the row and the field, and nothing is queued or stored', async () => {
    const before = await queuedChunks();
    const keysBefore = (await keysWithPrefix(redis, stack.config.REDIS_PREFIX)).length;

    const response = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [VALID_ROW, VALID_ROW, { ...VALID_ROW, petal_length: 11 }] });

    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body).toMatchObject({
      code: 'OB_ERR_INVALID_ROWS',
      status: 400,
      errors: [{ row: 2, field: 'petal_length', message: 'must be <= 10' }],
    });
    expect(response.body.detail).toContain("row 2: field 'petal_length'");
    expect(await queuedChunks()).toBe(before);
    expect((await keysWithPrefix(redis, stack.config.REDIS_PREFIX)).length).toBe(keysBefore);
  });

  it('when an array row has a wrong value, then the error names the feature at that position', async () => {
    const response = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [[5.1, 'wide', 1.4, 0.2]] });

    expect(response.status).toBe(400);
    expect(response.body.errors).toEqual([{ row: 0, field: 'sepal_width', message: 'must be number' }]);
  });

  it('when the model is unknown, then 404 problem+json names it', async () => {
    const response = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'nope', inputs: [VALID_ROW] });

    expect(response.status).toBe(404);
    expect(response.body).toMatchObject({ code: 'OB_ERR_MODEL_NOT_FOUND' });
    expect(response.body.detail).toContain("'nope'");
  });

  it('when the version is unknown, then 404 problem+json lists the versions there are', async () => {
    const response = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', version: '9', inputs: [VALID_ROW] });

    expect(response.status).toBe(404);
    expect(response.body).toMatchObject({ code: 'OB_ERR_VERSION_NOT_FOUND' });
    expect(response.body.detail).toContain('versions: 1, 2');
  });

  it.each(['0b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b', 'not-a-job', '..%2F..%2Fetc%2Fpasswd'])(
    'when job %s does not exist, then 404 problem+json',
    async (id) => {
      const response = await request(stack.url).get(`/v1/batch-result/${id}`);

      expect(response.status).toBe(404);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body.code).toBe('OB_ERR_JOB_NOT_FOUND');
    },
  );

  it('when the body is malformed JSON, then 400 problem+json', async () => {
    const response = await request(stack.url)
      .post('/v1/batch-predict')
      .set('content-type', 'application/json')
      .send('{"model": "iris", "inputs": [');

    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body.code).toBe('OB_ERR_MALFORMED_JSON');
  });

  it('when the content type is not JSON, then 415 problem+json', async () => {
    const response = await request(stack.url).post('/v1/batch-predict').set('content-type', 'text/plain').send('hello');

    expect(response.status).toBe(415);
    expect(response.body.code).toBe('OB_ERR_UNSUPPORTED_MEDIA_TYPE');
  });

  it('when the body is over the limit, then 413 problem+json', async () => {
    const inputs = Array.from({ length: 200 }, () => VALID_ROW);

    const response = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs });

    expect(response.status).toBe(413);
    expect(response.body.code).toBe('OB_ERR_PAYLOAD_TOO_LARGE');
  });

  it('when the envelope has an unknown field or no rows, then 400 names the field', async () => {
    const unknown = await request(stack.url)
      .post('/v1/batch-predict')
      .send({ model: 'iris', inputs: [VALID_ROW], colour: 'red' });
    const empty = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs: [] });
    const missing = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris' });

    expect(unknown.status).toBe(400);
    expect(unknown.body.errors).toEqual([{ field: 'colour', message: 'is not a known field' }]);
    expect(empty.status).toBe(400);
    expect(empty.body.errors).toEqual([{ field: 'inputs', message: 'must not be empty' }]);
    expect(missing.status).toBe(400);
    expect(missing.body.errors).toEqual([{ field: 'inputs', message: "must have required property 'inputs'" }]);
  });

  it('when a route does not exist, then 404 problem+json', async () => {
    const response = await request(stack.url).get('/v3/nothing'); // (/v2 is the Open Inference Protocol's)

    expect(response.status).toBe(404);
    expect(response.body.code).toBe('OB_ERR_NOT_FOUND');
  });

  it('when Redis answers, cannot evict keys and models are loaded, then livez and readyz answer 200', async () => {
    expect((await request(stack.url).get('/livez')).status).toBe(200);
    const ready = await request(stack.url).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ redis: true, redisEviction: true, models: true, accepting: true, storage: true });
    expect(ready.body.storage).toMatchObject({ acceptingJobs: true, highWatermark: 0.85, evictionAllowed: false, refusal: null });
    expect(ready.body.storage.nodes).toEqual([expect.objectContaining({ policy: 'noeviction', policySource: 'config' })]);
  });
});
