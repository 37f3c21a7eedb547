import type { Redis } from 'ioredis';
import { keysWithPrefix, newRedis } from '../helpers/env';
import { sleep } from '../helpers/reliability';
import { startStack, type Stack } from '../helpers/stack';

const ROWS = [
  { id: 'a', sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2 },
  { id: 'b', sepal_length: 6.7, sepal_width: 3.0, petal_length: 5.2, petal_width: 2.3 },
];
const AS_ARRAYS = ROWS.map((r) => [r.sepal_length, r.sepal_width, r.petal_length, r.petal_width]);

describe('the prediction cache of the synchronous predict', () => {
  let stack: Stack;
  const redis: Redis = newRedis();

  beforeAll(async () => {
    stack = await startStack({ PREDICTION_CACHE_MODELS: 'iris', PREDICTION_CACHE_TTL_SECONDS: '2' });
  });

  afterAll(async () => {
    await stack.close();
    await redis.quit();
  });

  const predict = async (path: string, inputs: unknown[]): Promise<Record<string, unknown>> => {
    const response = await fetch(`${stack.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs }),
    });
    expect(response.status).toBe(200);
    return (await response.json()) as Record<string, unknown>;
  };
  const jobRecords = async (): Promise<number> =>
    (await keysWithPrefix(redis, `${stack.config.REDIS_PREFIX}:job`)).filter((k) => !/:(in|out):\d+$/.test(k)).length;
  const lookups = async (outcome: 'hit' | 'miss'): Promise<number> => {
    const text = await (await fetch(`${stack.url}/metrics`)).text();
    return Number(
      new RegExp(`onnx_batch_prediction_cache_lookups_total\\{model="iris",version="2",outcome="${outcome}"\\} (\\d+)`).exec(text)?.[1] ??
        0,
    );
  };

  it(
    'when the same rows come again, in another form and with other ids, then the answer comes from the cache without a job, ' +
      'with the same results',
    async () => {
      const first = await predict('/v1/models/iris/predict', ROWS);
      const jobsAfterFirst = await jobRecords();

      const again = await predict('/v1/models/iris/predict', [{ ...ROWS[1], id: 'z' }, AS_ARRAYS[0]]);

      expect(first).toMatchObject({ status: 'completed', model: { name: 'iris', version: '2' } });
      expect(typeof first.jobId).toBe('string');
      expect(again).toMatchObject({
        jobId: null,
        cached: true,
        status: 'completed',
        model: { name: 'iris', version: '2', route: 'default' },
        progress: { done: 2, total: 2, failed: 0 },
      });
      const [b, a] = again.results as Record<string, unknown>[];
      const [firstA, firstB] = first.results as Record<string, unknown>[];
      expect(b).toEqual({ ...firstB, id: 'z' });
      expect(a).toEqual({ ...firstA, id: undefined });
      expect(await jobRecords()).toBe(jobsAfterFirst);
      expect(await lookups('hit')).toBeGreaterThanOrEqual(1);
      expect(await lookups('miss')).toBeGreaterThanOrEqual(1);
    },
  );

  it(
    'when one row is new, or another version is named, then a job runs (the cache answers only whole requests of its ' + 'own version)',
    async () => {
      await predict('/v1/models/iris/predict', ROWS);

      const partly = await predict('/v1/models/iris/predict', [...ROWS, [5.9, 3.0, 5.1, 1.8]]);
      const otherVersion = await predict('/v1/models/iris/versions/1/predict', ROWS);

      expect(typeof partly.jobId).toBe('string');
      expect(partly.cached).toBeUndefined();
      expect(typeof otherVersion.jobId).toBe('string');
      expect(otherVersion.model).toMatchObject({ version: '1' });
    },
  );

  it('when a model is not listed in PREDICTION_CACHE_MODELS, then its predicts always run', async () => {
    const text = { text: 'free offer, click here to win a prize' };
    await predict('/v1/models/spam/predict', [text]);

    const again = await predict('/v1/models/spam/predict', [text]);

    expect(typeof again.jobId).toBe('string');
  });

  it('when PREDICTION_CACHE_TTL_SECONDS have passed, then the rows run again', async () => {
    const row = [[5.0, 3.4, 1.5, 0.2]];
    await predict('/v1/models/iris/predict', row);
    expect((await predict('/v1/models/iris/predict', row)).cached).toBe(true);

    await sleep(2500);

    expect(typeof (await predict('/v1/models/iris/predict', row)).jobId).toBe('string');
  });
});
