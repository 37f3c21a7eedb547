import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { Redis } from 'ioredis';
import { RedisKeys } from '@onnx-batch/shared';
import { dropPrefix, newRedis, testEnv, type TestEnv } from '../helpers/env';
import type { Spawned } from '../helpers/processes';
import { finishedJob, ProcessGroup, rawRequest, uploadIrisNdjson } from '../helpers/reliability';

/**
 * A download whose stored results cannot be read half-way (here: chunk 1's sealed value is
 * altered, so AES-GCM refuses it) must never crash the API, nor end as a body that looks
 * complete. Chunk 0 is about 8 MB, more than the loopback socket buffers take (about 4 MB
 * here), so the API is waiting for the socket to drain (the client is not reading) when its
 * prefetch of chunk 1 fails.
 */
const CHUNK_SIZE = 50_000;
const ROWS = CHUNK_SIZE + 10; // chunk 0 full, chunk 1 small
/** Long enough for the prefetch of chunk 1 to fail while the client is not reading. */
const PAUSE_MS = 800;

interface Download {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** 'end' when the body ended cleanly, else the error the client saw. */
  ending: string;
}

/** GETs a URL, reading nothing for `pauseMs` after the headers, then everything to the end. */
function slowDownload(url: string, accept: string, pauseMs: number): Promise<Download> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept }, agent: false }, (res) => {
      const parts: Buffer[] = [];
      let settled = false;
      const settle = (ending: string): void => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts).toString('utf8'), ending });
      };
      res.on('end', () => settle('end'));
      res.on('error', (error: NodeJS.ErrnoException) => settle(`error: ${error.code ?? ''} ${error.message}`));
      res.on('close', () => settle(res.complete ? 'end' : 'closed before the end'));
      setTimeout(() => res.on('data', (d: Buffer) => parts.push(d)), pauseMs);
    });
    req.on('error', reject);
  });
}

/** Flips the last byte of a stored value (keeping its TTL): the AES-GCM tag no longer matches. */
async function corrupt(redis: Redis, key: string): Promise<void> {
  const value = await redis.getBuffer(key);
  if (!value) throw new Error(`no value at ${key}`);
  value[value.length - 1] = (value[value.length - 1] ?? 0) ^ 0xff;
  await redis.set(key, value, 'KEEPTTL');
}

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

describe('reliability: downloads whose stored results cannot be read (api + worker processes, ENCRYPTION_KEY set)', () => {
  const group = new ProcessGroup();
  let env: TestEnv;
  let redis: Redis;
  let api: { proc: Spawned; url: string };
  let jobId: string;
  let keys: RedisKeys;

  /** The api's error lines about unreadable results of the job's chunk `chunk`. */
  const readErrors = (chunk: number | string): Record<string, unknown>[] =>
    api.proc.output
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((l) => l.level === 'error' && l.message === 'stored results could not be read' && l.jobId === jobId && l.chunk === chunk);

  /** The api process is up, answers /livez and serves a fresh request of the same job. */
  async function expectApiServing(): Promise<void> {
    expect(api.proc.child.exitCode).toBeNull();
    expect(api.proc.child.signalCode).toBeNull();
    const live = await rawRequest(api.url, 'GET', '/livez', {});
    const page = await rawRequest(api.url, 'GET', `/v1/batch-result/${jobId}/results?offset=0&limit=5`, { accept: 'application/json' });
    expect(live.status).toBe(200);
    expect(page.status).toBe(200);
    expect((JSON.parse(page.text) as { results: unknown[] }).results).toHaveLength(5);
  }

  beforeAll(async () => {
    env = testEnv({ ENCRYPTION_KEY: randomBytes(32).toString('hex'), CHUNK_SIZE: String(CHUNK_SIZE) });
    keys = new RedisKeys(env.REDIS_PREFIX);
    redis = newRedis();
    api = await group.api(env);
    await group.worker(env);
    const submitted = await uploadIrisNdjson(api.url, ROWS);
    expect(submitted.status).toBe(202);
    jobId = String((JSON.parse(submitted.text) as { jobId: string }).jobId);
    const job = await finishedJob(api.url, jobId, 60_000);
    expect(job).toMatchObject({ status: 'completed', progress: { done: ROWS, failed: 0 } });
    await corrupt(redis, keys.output(jobId, 1));
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    await dropPrefix(redis, env.REDIS_PREFIX);
    redis.disconnect();
  });

  it.each([
    ['NDJSON', 'application/x-ndjson', CHUNK_SIZE],
    ['CSV', 'text/csv', CHUNK_SIZE + 1], // + the header line
  ])(
    'when chunk 1 cannot be decrypted while a slow client reads a %s download, then the body is cut short after chunk 0, the api ' +
      'logs it and keeps serving',
    async (_format, accept, linesBeforeFailure) => {
      const before = readErrors(1).length;

      const download = await slowDownload(`${api.url}/v1/batch-result/${jobId}/results`, accept, PAUSE_MS);

      expect(download.status).toBe(200);
      expect(download.ending).not.toBe('end');
      expect(lines(download.body)).toHaveLength(linesBeforeFailure);
      await expectApiServing();
      expect(readErrors(1)).toHaveLength(before + 1);
      expect(readErrors(1)[before]).toMatchObject({ answer: 'truncated', error: expect.stringContaining('failed authentication') });
    },
  );

  it('when a JSON page needs chunk 1, then the answer is a 500 problem naming the decryption failure, logged with the chunk', async () => {
    const answer = await rawRequest(api.url, 'GET', `/v1/batch-result/${jobId}/results?offset=${CHUNK_SIZE - 2}&limit=4`, {
      accept: 'application/json',
    });

    expect(answer.status).toBe(500);
    expect(answer.headers['content-type']).toContain('application/problem+json');
    expect(JSON.parse(answer.text)).toMatchObject({ code: 'OB_ERR_DECRYPTION_FAILED' });
    expect(readErrors('0-1')).toEqual([expect.objectContaining({ answer: 'error' })]);
    await expectApiServing();
  });

  it('when chunk 0 cannot be decrypted, then a download is a 500 problem (no attachment started), logged with the chunk', async () => {
    await corrupt(redis, keys.output(jobId, 0));

    const download = await slowDownload(`${api.url}/v1/batch-result/${jobId}/results`, 'text/csv', 0);

    expect(download.status).toBe(500);
    expect(download.ending).toBe('end');
    expect(download.headers['content-type']).toContain('application/problem+json');
    expect(download.headers['content-disposition']).toBeUndefined();
    expect(JSON.parse(download.body)).toMatchObject({ code: 'OB_ERR_DECRYPTION_FAILED' });
    expect(readErrors(0)).toEqual([expect.objectContaining({ answer: 'error' })]);
    expect(api.proc.child.exitCode).toBeNull();
    expect((await rawRequest(api.url, 'GET', '/livez', {})).status).toBe(200);
  });
});
