import request, { type Response } from 'supertest';
import { createLogger } from '@onnx-batch/shared';
import { startWorkerService } from '@onnx-batch/worker';
import { clearOfMinuteEnd } from '../helpers/clock';
import { startStack, type Stack } from '../helpers/stack';
import { parseExposition, sampleValue } from '../helpers/prometheus';

// Polls are answered by the server without Express (api/src/http/fast-polls.ts). Every answer
// here is asked twice, once of the server (fast path) and once of the Express app alone, and
// must come back the same: status, body and every header but the few that cannot match.

const ROW = [5.1, 3.5, 1.4, 0.2];
const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const WRITER = 'writer-key-0123456789abcdef';
const UNKNOWN_ID = '0b3e4f8a-1c2d-4e5f-8a9b-0c1d2e3f4a5b';
/** Differ between any two answers: when they were sent, the connection, the tokens left. */
const UNCOMPARABLE = new Set(['date', 'connection', 'keep-alive', 'ratelimit-remaining', 'retry-after']);

interface Case {
  what: string;
  path: string;
  headers?: Record<string, string>;
  method?: 'GET' | 'HEAD';
  /** Whether the server answers it without Express. */
  fast: boolean;
}

function comparable(response: Response): { status: number; headers: Record<string, string>; body: unknown } {
  const headers = Object.fromEntries(Object.entries(response.headers).filter(([name]) => !UNCOMPARABLE.has(name))) as Record<
    string,
    string
  >;
  return { status: response.status, headers, body: response.text ? (JSON.parse(response.text) as unknown) : null };
}

async function waitForStatus(stack: Stack, id: string, status: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const poll = await request(stack.url).get(`/v1/batch-result/${id}?wait=1`).set('authorization', `Bearer ${ACME}`);
    if (poll.body.status === status) return;
  }
  throw new Error(`job ${id} never became ${status}`);
}

describe('polls answered without Express answer exactly as Express does', () => {
  let stack: Stack;
  let finished: string;
  let queued: string;

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: `acme:${ACME},globex:${GLOBEX},acme:${WRITER}:submit`, RATE_LIMIT_PER_MINUTE: '10000' }, false);
    const submit = () =>
      request(stack.url)
        .post('/v1/batch-predict')
        .set('authorization', `Bearer ${ACME}`)
        .send({ model: 'iris', inputs: [ROW] });
    finished = (await submit()).body.jobId as string;
    const worker = await startWorkerService(stack.config, createLogger('error', 'test-worker'));
    try {
      await waitForStatus(stack, finished, 'completed');
    } finally {
      await worker.close();
    }
    queued = (await submit()).body.jobId as string;
  });

  afterAll(async () => {
    await stack.close();
  });

  const auth = { authorization: `Bearer ${ACME}` };
  const cases = (): Case[] => [
    { what: 'a finished job, with its results inline', path: `/v1/batch-result/${finished}`, headers: auth, fast: true },
    { what: 'a finished job at the unversioned path', path: `/batch-result/${finished}`, headers: auth, fast: true },
    { what: 'a finished job with the key in X-API-Key', path: `/v1/batch-result/${finished}`, headers: { 'x-api-key': ACME }, fast: true },
    { what: 'an unfinished job', path: `/v1/batch-result/${queued}`, headers: auth, fast: true },
    { what: 'an unfinished job, waiting 0.2 s for nothing', path: `/v1/batch-result/${queued}?wait=0.2`, headers: auth, fast: true },
    { what: 'a finished job with ?wait=', path: `/v1/batch-result/${finished}?wait=5`, headers: auth, fast: true },
    { what: 'a job of another tenant', path: `/v1/batch-result/${finished}`, headers: { authorization: `Bearer ${GLOBEX}` }, fast: true },
    { what: 'a job that does not exist', path: `/v1/batch-result/${UNKNOWN_ID}`, headers: auth, fast: true },
    {
      what: 'a request id the client chose',
      path: `/v1/batch-result/${queued}`,
      headers: { ...auth, 'x-request-id': 'client-chosen.id-1' },
      fast: true,
    },
    { what: 'no key', path: `/v1/batch-result/${finished}`, fast: false },
    {
      what: 'a key nobody has',
      path: `/v1/batch-result/${finished}`,
      headers: { authorization: 'Bearer not-a-key-of-anyone-here' },
      fast: false,
    },
    {
      what: 'a key without the read role',
      path: `/v1/batch-result/${finished}`,
      headers: { authorization: `Bearer ${WRITER}` },
      fast: false,
    },
    { what: 'a wait longer than 60 s', path: `/v1/batch-result/${queued}?wait=61`, headers: auth, fast: false },
    { what: 'a wait that is not a number', path: `/v1/batch-result/${queued}?wait=soon`, headers: auth, fast: false },
    { what: 'another query parameter', path: `/v1/batch-result/${queued}?wait=0&x=1`, headers: auth, fast: false },
    { what: 'an id that is not one', path: '/v1/batch-result/not-a-job', headers: auth, fast: false },
    { what: 'an id in capitals', path: `/v1/batch-result/${finished.toUpperCase()}`, headers: auth, fast: false },
    { what: 'the path in capitals', path: `/V1/BATCH-RESULT/${finished}`, headers: auth, fast: false },
    { what: 'a trailing slash', path: `/v1/batch-result/${finished}/`, headers: auth, fast: false },
    { what: 'HEAD', path: `/v1/batch-result/${finished}`, headers: auth, method: 'HEAD', fast: false },
  ];

  it('when the same poll is asked of the server and of Express alone, then status, body and headers are the same', async () => {
    for (const c of cases()) {
      const ask = (target: Parameters<typeof request>[0]) => {
        const started = c.method === 'HEAD' ? request(target).head(c.path) : request(target).get(c.path);
        for (const [name, value] of Object.entries(c.headers ?? {})) started.set(name, value);
        return started;
      };
      const takenBefore = stack.api.fastPollsTaken();
      const viaServer = await ask(stack.url);
      const taken = stack.api.fastPollsTaken() - takenBefore;
      const viaExpress = await ask(stack.api.app);

      expect({ what: c.what, taken }).toEqual({ what: c.what, taken: c.fast ? 1 : 0 });
      const [server, express] = [comparable(viaServer), comparable(viaExpress)];
      if (!c.headers?.['x-request-id']) {
        expect(server.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
        delete server.headers['x-request-id'];
        delete express.headers['x-request-id'];
      }
      expect({ what: c.what, ...server }).toEqual({ what: c.what, ...express });
    }
  });

  it('when the two paths answer, then they are the answers the API promises', async () => {
    const get = (path: string, key = ACME) => request(stack.url).get(path).set('authorization', `Bearer ${key}`);

    const done = await get(`/v1/batch-result/${finished}`);
    expect(done.status).toBe(200);
    expect(done.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(done.headers['x-content-type-options']).toBe('nosniff');
    expect(done.headers['ratelimit-limit']).toBe('10000');
    expect(done.body).toMatchObject({ jobId: finished, status: 'completed', results: [{ label: 'setosa' }] });

    const pending = await get(`/v1/batch-result/${queued}?wait=0.3`);
    expect(pending.body).toMatchObject({ jobId: queued, status: 'queued', results: null });

    const theirs = await get(`/v1/batch-result/${finished}`, GLOBEX);
    expect(theirs.status).toBe(404);
    expect(theirs.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(theirs.body).toMatchObject({ code: 'OB_ERR_JOB_NOT_FOUND', instance: `/v1/batch-result/${finished}` });
  });

  it('when an unfinished job finishes during a long poll taken by the fast path, then the poll answers it finished', async () => {
    const id = (
      await request(stack.url)
        .post('/v1/batch-predict')
        .set('authorization', `Bearer ${ACME}`)
        .send({ model: 'iris', inputs: [ROW] })
    ).body.jobId as string;
    const takenBefore = stack.api.fastPollsTaken();
    const poll = request(stack.url)
      .get(`/v1/batch-result/${id}?wait=20`)
      .set('authorization', `Bearer ${ACME}`)
      .then((r) => r);
    const worker = await startWorkerService(stack.config, createLogger('error', 'test-worker'));
    try {
      const answer = await poll;
      expect(answer.body).toMatchObject({ jobId: id, status: 'completed', results: [{ label: 'setosa' }] });
      expect(stack.api.fastPollsTaken() - takenBefore).toBe(1);
    } finally {
      await worker.close();
    }
  });

  it('when polls take the fast path, then /metrics counts them under their route pattern', async () => {
    const count = async (): Promise<number> => {
      const samples = parseExposition((await request(stack.url).get('/metrics')).text);
      const labels = { method: 'GET', route: '/v1/batch-result/:id', status: '200' };
      return sampleValue(samples, 'onnx_batch_http_request_duration_seconds_count', labels) ?? 0;
    };
    const before = await count();
    const takenBefore = stack.api.fastPollsTaken();

    for (let i = 0; i < 3; i++) await request(stack.url).get(`/v1/batch-result/${queued}`).set('authorization', `Bearer ${ACME}`);

    expect(stack.api.fastPollsTaken() - takenBefore).toBe(3);
    expect((await count()) - before).toBe(3);
  });
});

describe('the rate limit holds across the fast path and Express', () => {
  let stack: Stack;

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: `acme:${ACME}`, RATE_LIMIT_PER_MINUTE: '4' }, false);
  });

  afterAll(async () => {
    await stack.close();
  });

  it('when a key spends its budget over both paths, then both refuse it with the same 429', async () => {
    const path = `/v1/batch-result/${UNKNOWN_ID}`;
    const headers = { authorization: `Bearer ${ACME}`, 'x-request-id': 'same-for-both' };
    const viaServer = () => request(stack.url).get(path).set(headers);
    const viaExpress = () => request(stack.api.app).get(path).set(headers);
    const takenBefore = stack.api.fastPollsTaken();
    await clearOfMinuteEnd();

    const statuses = [(await viaServer()).status, (await viaExpress()).status, (await viaServer()).status, (await viaExpress()).status];
    expect(statuses).toEqual([404, 404, 404, 404]);
    const [server, express] = [await viaServer(), await viaExpress()];

    expect(stack.api.fastPollsTaken() - takenBefore).toBe(3);
    expect(server.status).toBe(429);
    expect(Number(server.headers['retry-after'])).toBeGreaterThan(0);
    expect(comparable(server)).toEqual(comparable(express));
    expect(server.body).toMatchObject({ code: 'OB_ERR_RATE_LIMITED' });
  });
});
