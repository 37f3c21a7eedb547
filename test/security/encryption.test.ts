import { randomBytes } from 'node:crypto';
import request from 'supertest';
import {
  AtRestCipher,
  ConfigError,
  createLogger,
  DecryptionError,
  keyIdOf,
  loadConfig,
  openAtRest,
  parseEncryptionKey,
  SEALED_MAGIC,
  SEALED_VERSION,
} from '@onnx-batch/shared';
import { startWorkerService, type WorkerService } from '@onnx-batch/worker';
import { jobKey, newRedis, testConfig } from '../helpers/env';
import { startStack, type Stack } from '../helpers/stack';
import { problemOfDomainError } from '@onnx-batch/api';

const KEY_HEX = randomBytes(32).toString('hex');
const OTHER_KEY_BASE64 = randomBytes(32).toString('base64');
const KEY_ID = keyIdOf(Buffer.from(KEY_HEX, 'hex'));
const OTHER_KEY_ID = keyIdOf(Buffer.from(OTHER_KEY_BASE64, 'base64'));
const SEALED_HEADER = Buffer.concat([SEALED_MAGIC, Buffer.from([SEALED_VERSION])]);

/** Iris rows whose ids are easy to spot in a Redis dump, and a spam message that is too. */
const IRIS_ROWS = [
  { id: 'patient-ALPHA-7731', sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
  { id: 'patient-BRAVO-9902', sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 },
];
const SPAM_TEXT = 'CONFIDENTIAL-MARKER claim your free cruise prize now';

async function finished(stack: Stack, jobId: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 30; i++) {
    const { body } = await request(stack.url).get(`/v1/batch-result/${jobId}?wait=5`);
    if (['completed', 'failed', 'cancelled'].includes(String(body.status))) return body as Record<string, unknown>;
  }
  throw new Error(`job ${jobId} did not finish`);
}

describe('the at-rest cipher', () => {
  const cipher = new AtRestCipher(Buffer.from(KEY_HEX, 'hex'));

  it('when a value is sealed and opened at the same place, then it comes back whole and the stored form is not the plaintext', () => {
    // Act
    const sealed = cipher.seal('{"label":"setosa"}', 'job:out:0');

    // Assert
    expect(sealed.subarray(0, 4)).toEqual(SEALED_HEADER);
    expect(sealed.subarray(4, 8).toString('hex')).toBe(KEY_ID);
    expect(sealed.includes('setosa')).toBe(false);
    expect(cipher.open(sealed, 'job:out:0').toString()).toBe('{"label":"setosa"}');
    expect(cipher.seal('same', 'p').equals(cipher.seal('same', 'p'))).toBe(false); // random IV
  });

  it('when any byte past the header is changed, then opening fails with an authentication error', () => {
    // Arrange
    const sealed = cipher.seal('{"label":"setosa"}', 'job:out:0');

    // Act & Assert: IV, tag and ciphertext bytes
    for (const at of [8, 20, 30, sealed.length - 1]) {
      const tampered = Buffer.from(sealed);
      tampered[at] = (tampered[at] ?? 0) ^ 0x01;
      expect(() => cipher.open(tampered, 'job:out:0')).toThrow(
        'stored data for job:out:0 failed authentication: it was altered or corrupted',
      );
    }
  });

  it('when a sealed value is moved to another job or chunk, then opening it there fails authentication', () => {
    const sealed = cipher.seal('{"label":"setosa"}', 'job-a:out:0');

    expect(() => cipher.open(sealed, 'job-b:out:0')).toThrow(/failed authentication/);
    expect(() => cipher.open(sealed, 'job-a:out:1')).toThrow(/failed authentication/);
  });

  it('when a value sealed under one key is opened with another, then the error names both key ids', () => {
    // Arrange
    const other = new AtRestCipher(Buffer.from(OTHER_KEY_BASE64, 'base64'));

    // Act
    const error = (() => {
      try {
        other.open(cipher.seal('x', 'p'), 'p');
      } catch (e) {
        return e;
      }
      return null;
    })();

    // Assert
    expect(error).toBeInstanceOf(DecryptionError);
    // as the API answers it
    expect(problemOfDomainError(error)?.toProblem()).toMatchObject({ code: 'OB_ERR_DECRYPTION_FAILED', status: 500 });
    expect((error as Error).message).toBe(
      `stored data was encrypted with a different key (key id ${KEY_ID}; ENCRYPTION_KEY has key id ${OTHER_KEY_ID})`,
    );
  });

  it('when plain data is read with a key set, or sealed data without one, then each says so', () => {
    expect(() => cipher.open(Buffer.from('{"label":"setosa"}'), 'job:out:0')).toThrow(
      'stored data for job:out:0 is not encrypted, but ENCRYPTION_KEY is set',
    );
    expect(() => openAtRest(null, cipher.seal('x', 'p'), 'p')).toThrow(
      `stored data is encrypted (key id ${KEY_ID}), but ENCRYPTION_KEY is not set`,
    );
    expect(openAtRest(null, Buffer.from('{"a":1}'), 'p').toString()).toBe('{"a":1}');
  });

  it(
    'when ENCRYPTION_KEY is 64 hex characters or base64 of 32 bytes, then it is accepted; otherwise a ConfigError names it ' +
      'without showing it',
    () => {
      // Act & Assert
      expect(parseEncryptionKey(KEY_HEX)).toHaveLength(32);
      expect(parseEncryptionKey(OTHER_KEY_BASE64)).toHaveLength(32);
      expect(loadConfig({ ENCRYPTION_KEY: KEY_HEX }).ENCRYPTION_KEY).toBe(KEY_HEX);
      for (const bad of ['00ff', KEY_HEX.slice(0, 62), randomBytes(16).toString('base64'), `${KEY_HEX}00`, 'x'.repeat(64)]) {
        let error: unknown = null;
        try {
          loadConfig({ ENCRYPTION_KEY: bad });
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as Error).message).toMatch(/^invalid configuration: ENCRYPTION_KEY=<redacted> must be 32 bytes/);
        expect((error as Error).message).not.toContain(bad);
      }
    },
  );
});

describe('encryption at rest through the API, real Redis and real workers', () => {
  let stack: Stack;
  const workers: WorkerService[] = [];
  const redis = newRedis();
  const logger = createLogger('error', 'test');

  beforeAll(async () => {
    // The API alone first, so staged inputs can be looked at before a worker consumes them. No
    // inline results: the status of a job whose results cannot be opened stays readable.
    stack = await startStack({ ENCRYPTION_KEY: KEY_HEX, INLINE_RESULTS_LIMIT: '0' }, false);
  });

  afterEach(async () => {
    for (const w of workers.splice(0)) await w.close();
  });

  afterAll(async () => {
    for (const w of workers) await w.close();
    await stack.close();
    await redis.quit();
  });

  const startWorker = async (env: Record<string, string>): Promise<void> => {
    workers.push(await startWorkerService(testConfig({ REDIS_PREFIX: stack.config.REDIS_PREFIX, ...env }), logger));
  };
  const stopWorkers = async (): Promise<void> => {
    for (const w of workers.splice(0)) await w.close();
  };
  const key = (jobId: string, part: 'in' | 'out', chunk = 0) => `${jobKey(stack.config.REDIS_PREFIX, jobId)}:${part}:${chunk}`;

  it(
    'when ENCRYPTION_KEY is set, then inputs and results in Redis are sealed, and the job still completes with the ' + 'right results',
    async () => {
      // Arrange
      const iris = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', version: '1', inputs: IRIS_ROWS });
      const spam = await request(stack.url)
        .post('/v1/batch-predict')
        .send({ model: 'spam', inputs: [{ text: SPAM_TEXT }] });
      const irisId = String(iris.body.jobId);
      const spamId = String(spam.body.jobId);
      const irisInput = await redis.getBuffer(key(irisId, 'in'));
      const spamInput = await redis.getBuffer(key(spamId, 'in'));

      // Act
      await startWorker({ ENCRYPTION_KEY: KEY_HEX });
      const irisJob = await finished(stack, irisId);
      const spamJob = await finished(stack, spamId);
      const irisOutput = await redis.getBuffer(key(irisId, 'out'));
      const spamOutput = await redis.getBuffer(key(spamId, 'out'));
      const irisPage = await request(stack.url).get(`/v1/batch-result/${irisId}/results?offset=0&limit=10`);
      const irisNdjson = await request(stack.url).get(`/v1/batch-result/${irisId}/results`).set('accept', 'application/x-ndjson');
      const spamPage = await request(stack.url).get(`/v1/batch-result/${spamId}/results?offset=0&limit=10`);

      // Assert: stored forms
      for (const stored of [irisInput, spamInput, irisOutput, spamOutput]) {
        expect(stored).not.toBeNull();
        expect(stored?.subarray(0, 4)).toEqual(SEALED_HEADER);
        expect(stored?.subarray(4, 8).toString('hex')).toBe(KEY_ID);
        for (const plain of [
          'patient-ALPHA',
          'patient-BRAVO',
          'CONFIDENTIAL-MARKER',
          'cruise',
          'OBC1',
          'setosa',
          'virginica',
          'probabilities',
          'label',
        ]) {
          expect(stored?.includes(plain)).toBe(false);
        }
      }
      // Assert: results as a client sees them
      expect(irisJob).toMatchObject({ status: 'completed', progress: { done: 2, total: 2, failed: 0 } });
      const results = irisPage.body.results as { id: string; label: string }[];
      expect(results.map((r) => [r.id, r.label])).toEqual([
        ['patient-ALPHA-7731', 'setosa'],
        ['patient-BRAVO-9902', 'virginica'],
      ]);
      expect(
        irisNdjson.text
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { label: string }).label),
      ).toEqual(['setosa', 'virginica']);
      expect(spamJob).toMatchObject({ status: 'completed', progress: { done: 1, failed: 0 } });
      expect(['ham', 'spam']).toContain((spamPage.body.results as { label: string }[])[0]?.label);
    },
  );

  it(
    'when a worker with a different key takes a chunk, then the chunk fails for good and the job says the data was encrypted ' +
      'with a different key',
    async () => {
      // Arrange
      const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs: IRIS_ROWS });
      const jobId = String(submitted.body.jobId);

      // Act
      await startWorker({ ENCRYPTION_KEY: OTHER_KEY_BASE64, JOB_ATTEMPTS: '3' });
      const job = await finished(stack, jobId);

      // Assert
      expect(job).toMatchObject({ status: 'failed', progress: { done: 2, failed: 2 } });
      const error = job.error as { code: string; detail: string };
      expect(error.detail).toContain(
        `stored data was encrypted with a different key (key id ${KEY_ID}; ENCRYPTION_KEY has key id ${OTHER_KEY_ID})`,
      );
      // The failed rows were sealed by the misconfigured worker: reading them names its key id.
      const results = await request(stack.url).get(`/v1/batch-result/${jobId}/results?offset=0&limit=10`);
      expect(results.status).toBe(500);
      expect(results.body.detail).toBe(
        `stored data was encrypted with a different key (key id ${OTHER_KEY_ID}; ENCRYPTION_KEY has key id ${KEY_ID})`,
      );
    },
  );

  it('when an API with a different key, or with none, reads results, then it answers 500 OB_ERR_DECRYPTION_FAILED saying why', async () => {
    // Arrange: a job completed under KEY_HEX
    const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs: IRIS_ROWS });
    const jobId = String(submitted.body.jobId);
    await startWorker({ ENCRYPTION_KEY: KEY_HEX });
    await finished(stack, jobId);
    await stopWorkers();
    const otherKey = await startStack({ REDIS_PREFIX: stack.config.REDIS_PREFIX, ENCRYPTION_KEY: OTHER_KEY_BASE64 }, false);
    const noKey = await startStack({ REDIS_PREFIX: stack.config.REDIS_PREFIX }, false);

    try {
      // Act
      const status = await request(otherKey.url).get(`/v1/batch-result/${jobId}`);
      const page = await request(otherKey.url).get(`/v1/batch-result/${jobId}/results?offset=0&limit=10`);
      const unkeyed = await request(noKey.url).get(`/v1/batch-result/${jobId}`);

      // Assert
      for (const response of [status, page]) {
        expect(response.status).toBe(500);
        expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
        expect(response.body).toMatchObject({ code: 'OB_ERR_DECRYPTION_FAILED', title: 'Stored data could not be decrypted' });
        expect(response.body.detail).toBe(
          `stored data was encrypted with a different key (key id ${KEY_ID}; ENCRYPTION_KEY has key id ${OTHER_KEY_ID})`,
        );
      }
      expect(unkeyed.status).toBe(500);
      expect(unkeyed.body.detail).toBe(`stored data is encrypted (key id ${KEY_ID}), but ENCRYPTION_KEY is not set`);
    } finally {
      // Not close(): that would drop the shared prefix under the main stack.
      await otherKey.api.close();
      await noKey.api.close();
    }
  });

  it('when one byte of stored results is changed, then reading them answers an authentication error, not altered results', async () => {
    // Arrange
    const submitted = await request(stack.url).post('/v1/batch-predict').send({ model: 'iris', inputs: IRIS_ROWS });
    const jobId = String(submitted.body.jobId);
    await startWorker({ ENCRYPTION_KEY: KEY_HEX });
    await finished(stack, jobId);
    await stopWorkers();
    const stored = (await redis.getBuffer(key(jobId, 'out'))) as Buffer;
    const last = stored.length - 1;
    stored[last] = (stored[last] ?? 0) ^ 0x20;
    await redis.set(key(jobId, 'out'), stored, 'KEEPTTL');

    // Act
    const response = await request(stack.url).get(`/v1/batch-result/${jobId}/results?offset=0&limit=10`);

    // Assert
    expect(response.status).toBe(500);
    expect(response.body).toMatchObject({
      code: 'OB_ERR_DECRYPTION_FAILED',
      detail: `stored data for ${jobId}:out:0 failed authentication: it was altered or corrupted`,
    });
  });
});
