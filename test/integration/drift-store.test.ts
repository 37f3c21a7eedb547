import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import {
  ChunkEncoder,
  countLayout,
  createLogger,
  DriftRecorder,
  loadBaseline,
  readDriftCounts,
  readDriftReport,
  ModelRepository,
  RedisKeys,
  type LoadedBaseline,
  type ModelVersion,
} from '@onnx-batch/shared';
import { Registry } from 'prom-client';
import { driftReportsReader, registerDriftGauges } from '@onnx-batch/api';
import { InferencePool, type ChunkOutcome } from '@onnx-batch/worker';
import { waitForJob } from '../helpers/http';
import { parseExposition } from '../helpers/prometheus';
import { startStack } from '../helpers/stack';
import { dropPrefix, keysWithPrefix, MODELS_DIR, newRedis, testEnv } from '../helpers/env';
import { readManifest } from '../helpers/model-files';
import { sleep } from '../helpers/reliability';

/**
 * Drift counts on a real Redis: the recorder's minute and hour buckets, windows read from them,
 * and retention (buckets expire DRIFT_RETENTION_HOURS after they end). A movable clock stands in
 * for time passing; Redis expires keys on its own clock.
 */
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;

describe('DriftRecorder and readDriftCounts (real Redis)', () => {
  const redis: Redis = newRedis();
  const prefix = testEnv().REDIS_PREFIX;
  const keys = new RedisKeys(prefix);
  let baseline: LoadedBaseline;
  let clock = Date.now();
  const recorders: DriftRecorder[] = [];
  const recorder = (retentionSeconds = 48 * 3600): DriftRecorder => {
    const r = new DriftRecorder(redis, keys, { retentionSeconds, flushEveryMs: 3_600_000, now: () => clock });
    recorders.push(r);
    return r;
  };
  /** Counts of `rows` rows, all in each statistic's first bin and the first label. */
  const counts = (rows: number): Uint32Array => {
    const layout = countLayout(baseline);
    const out = new Uint32Array(layout.fields.length);
    out[0] = rows;
    out[1] = rows;
    for (const s of layout.statistics) out[s.offset] = rows;
    if (layout.prediction) out[layout.prediction.offset] = rows;
    return out;
  };

  beforeAll(async () => {
    baseline = (await loadBaseline(path.join(MODELS_DIR, 'iris', '2'), readManifest('iris', '2'))) as LoadedBaseline;
  });

  afterAll(async () => {
    for (const r of recorders) await r.close().catch(() => undefined);
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  it(
    'when chunks are added within a minute and flushed, then one minute hash and one hour hash hold their sums, with only ' +
      'non-zero bins',
    async () => {
      // Arrange
      clock = Date.UTC(2030, 0, 1, 10, 37, 10);
      const r = recorder();

      // Act
      r.add('iris', '7', baseline, counts(3));
      r.add('iris', '7', baseline, counts(4));
      await r.flush();

      // Assert
      const minute = await redis.hgetall(keys.driftBucket('iris', '7', baseline.digest, 'm', Math.floor(clock / MINUTE)));
      const hour = await redis.hgetall(keys.driftBucket('iris', '7', baseline.digest, 'h', Math.floor(clock / HOUR)));
      expect(minute).toEqual(hour);
      expect(minute).toEqual({
        rows: '7',
        predictions: '7',
        's:sepal_length:0': '7',
        's:sepal_width:0': '7',
        's:petal_length:0': '7',
        's:petal_width:0': '7',
        'p:0': '7',
      });
    },
  );

  it('when counts do not fit the baseline layout, then nothing is added', () => {
    expect(recorder().add('iris', '7', baseline, new Uint32Array(3))).toBe(false);
  });

  it('when counts are spread over a day, then each window sums only its own span, 24 hours from hour buckets', async () => {
    // Arrange: rows at now, 10 min, 40 min, 3 h, 23 h 50 min and 30 h ago (version 8)
    const now = Date.UTC(2030, 0, 2, 12, 20, 30);
    const r = recorder();
    const ago = [0, 10 * MINUTE, 40 * MINUTE, 3 * HOUR, 23 * HOUR + 50 * MINUTE, 30 * HOUR];
    for (const [i, before] of ago.entries()) {
      clock = now - before;
      r.add('iris', '8', baseline, counts(10 ** i));
      await r.flush();
    }
    clock = now;

    // Act
    const read = async (window: '15m' | '1h' | '24h'): Promise<number> =>
      (await readDriftCounts(redis, keys, 'iris', '8', baseline.digest, window, now)).sums.get('rows') ?? 0;

    // Assert
    expect(await read('15m')).toBe(1 + 10);
    expect(await read('1h')).toBe(1 + 10 + 100);
    expect(await read('24h')).toBe(1 + 10 + 100 + 1000 + 10_000);
  });

  it('when counts were binned by another baseline (another digest), then a window of this one does not see them', async () => {
    clock = Date.UTC(2030, 0, 3, 8, 0, 0);
    const r = recorder();
    r.add('iris', '9', { ...baseline, digest: '0000000000000000' }, counts(5));
    await r.flush();

    const sums = (await readDriftCounts(redis, keys, 'iris', '9', baseline.digest, '1h', clock)).sums;

    expect(sums.size).toBe(0);
  });

  it('when a report is read over a window, then it judges the summed counts (all in one bin: drift everywhere)', async () => {
    clock = Date.UTC(2030, 0, 4, 8, 0, 0);
    const r = recorder();
    r.add('iris', '10', baseline, counts(1200));
    await r.flush();

    const report = await readDriftReport(
      redis,
      keys,
      'iris',
      '10',
      baseline,
      '15m',
      { thresholds: { warn: 0.1, drift: 0.25 }, minRows: 1000 },
      clock,
    );

    expect(report).toMatchObject({ model: 'iris', version: '10', window: '15m', rows: 1200, status: 'drift' });
    expect(Object.values(report.features).map((f) => f.status)).toEqual(['drift', 'drift', 'drift', 'drift']);
  });

  it(
    'when a bucket reaches its retention, then Redis expires it: minute buckets the retention after their minute ends, hour ' +
      'buckets after their hour',
    async () => {
      // Arrange: the minute before now, with a retention that ends 2 s from now (DRIFT_RETENTION_HOURS is hours; seconds make it testable)
      const now = Date.now();
      const minuteEnd = Math.floor(now / MINUTE) * MINUTE;
      clock = minuteEnd - 1;
      const retention = Math.ceil((now + 2000 - minuteEnd) / 1000);
      const r = recorder(retention);
      const minuteKey = keys.driftBucket('iris', '11', baseline.digest, 'm', Math.floor(clock / MINUTE));
      const hourKey = keys.driftBucket('iris', '11', baseline.digest, 'h', Math.floor(clock / HOUR));

      // Act
      r.add('iris', '11', baseline, counts(1));
      clock = now;
      await r.flush();
      const ttlBefore = await redis.pttl(minuteKey);
      await sleep(Math.max(0, ttlBefore) + 1200);

      // Assert
      expect(ttlBefore).toBeGreaterThan(0);
      expect(ttlBefore).toBeLessThanOrEqual(3000);
      expect(await redis.exists(minuteKey)).toBe(0);
      // The hour bucket lives until the retention after ITS hour ends (the hour of the minute the
      // counts were added in): later than the minute's, unless that minute was its hour's last.
      const hourExpiresAt = (Math.floor((minuteEnd - 1) / HOUR) + 1) * HOUR + retention * 1000;
      if (hourExpiresAt > Date.now()) expect(Math.abs((await redis.pttl(hourKey)) - (hourExpiresAt - Date.now()))).toBeLessThan(2000);
      else expect(await redis.exists(hourKey)).toBe(0);
    },
  );

  it('when buckets are written with the default retention (48 hours), then each expires 48 hours after it ends', async () => {
    clock = Date.now();
    const r = recorder();
    r.add('iris', '13', baseline, counts(1));
    await r.flush();

    const minute = await redis.pttl(keys.driftBucket('iris', '13', baseline.digest, 'm', Math.floor(clock / MINUTE)));
    const hour = await redis.pttl(keys.driftBucket('iris', '13', baseline.digest, 'h', Math.floor(clock / HOUR)));

    expect(Math.abs(minute - ((Math.floor(clock / MINUTE) + 1) * MINUTE + 48 * HOUR - Date.now()))).toBeLessThan(2000);
    expect(Math.abs(hour - ((Math.floor(clock / HOUR) + 1) * HOUR + 48 * HOUR - Date.now()))).toBeLessThan(2000);
  });

  it('when a bucket is already past its retention when flushed, then it is not written at all', async () => {
    clock = Date.now() - 3 * HOUR;
    const r = recorder(3600);
    r.add('iris', '12', baseline, counts(1));
    clock = Date.now();

    await r.flush();

    expect(await keysWithPrefix(redis, `${prefix}:drift:{iris}:12`)).toEqual([]);
  });
});

describe('drift gauges (real Redis, the shipped repository)', () => {
  const redis: Redis = newRedis();
  const prefix = testEnv().REDIS_PREFIX;
  const keys = new RedisKeys(prefix);
  let repository: ModelRepository;

  beforeAll(async () => {
    repository = await ModelRepository.open(MODELS_DIR);
  });

  afterAll(async () => {
    repository.close();
    await dropPrefix(redis, prefix);
    await redis.quit();
  });

  it(
    'when a scrape reads the drift gauges, then they cover the last 15 minutes, and only versions whose window holds ' +
      'DRIFT_MIN_ROWS rows',
    async () => {
      // Arrange: iris 1 counted 20 minutes ago, iris 2 five minutes ago, spam 1 too few rows
      const write = async (name: string, version: string, minutesAgo: number, rows: number): Promise<void> => {
        const baseline = repository.resolve(name, version).baseline as LoadedBaseline;
        const layout = countLayout(baseline);
        const counts = new Uint32Array(layout.fields.length);
        counts[0] = rows;
        counts[1] = rows;
        for (const s of layout.statistics) counts[s.offset] = rows;
        if (layout.prediction) counts[layout.prediction.offset] = rows;
        const r = new DriftRecorder(redis, keys, {
          retentionSeconds: 3600,
          flushEveryMs: 3_600_000,
          now: () => Date.now() - minutesAgo * MINUTE,
        });
        r.add(name, version, baseline, counts);
        await r.close();
      };
      await write('iris', '1', 20, 5000);
      await write('iris', '2', 5, 1200);
      await write('spam', '1', 5, 999);
      const registry = new Registry();
      registerDriftGauges(registry, driftReportsReader(repository, redis, keys, { thresholds: { warn: 0.1, drift: 0.25 }, minRows: 1000 }));

      // Act
      const samples = parseExposition(await registry.metrics());

      // Assert
      const series = samples
        .map((s) => `${s.name}{${s.labels.model}@${s.labels.version}${s.labels.feature ? ` ${s.labels.feature}` : ''}}`)
        .sort();
      expect(series).toEqual([
        'onnx_batch_feature_psi{iris@2 petal_length}',
        'onnx_batch_feature_psi{iris@2 petal_width}',
        'onnx_batch_feature_psi{iris@2 sepal_length}',
        'onnx_batch_feature_psi{iris@2 sepal_width}',
        'onnx_batch_prediction_psi{iris@2}',
      ]);
      for (const s of samples) expect(s.value).toBeGreaterThan(0.25); // every row in one bin
    },
  );
});

describe('inference threads count chunks into drift bins (real ONNX Runtime)', () => {
  let repository: ModelRepository;
  let version: ModelVersion;
  const pools: InferencePool[] = [];
  const logger = createLogger('error', 'test');
  const pool = (rate: number): InferencePool => {
    const p = new InferencePool({ threads: 1, intraOpThreads: 1, maxBatchRows: 1, driftSampleRate: rate }, logger);
    pools.push(p);
    return p;
  };
  const chunk = (): Buffer => {
    const encoder = new ChunkEncoder(version.manifest, 150);
    const golden = (JSON.parse(readFileSync(path.join(MODELS_DIR, 'iris', '2', 'golden.json'), 'utf8')) as { inputs: unknown[] }).inputs;
    for (const row of golden) encoder.add(row);
    return encoder.finish();
  };

  beforeAll(async () => {
    repository = await ModelRepository.open(MODELS_DIR);
    version = repository.resolve('iris', '2');
  });

  afterAll(async () => {
    for (const p of pools) await p.close();
    repository.close();
  });

  it(
    'when every chunk is sampled, then each outcome carries counts of all its rows in the reference shares, under its ' + 'baseline digest',
    async () => {
      const outcome: ChunkOutcome = await pool(1).run(version, chunk());

      const layout = countLayout(version.baseline as LoadedBaseline);
      const field = (name: string): number => outcome.drift?.counts[layout.fields.indexOf(name)] as number;
      expect(outcome.drift?.digest).toBe(version.baseline?.digest);
      expect([field('rows'), field('predictions')]).toEqual([150, 150]);
      const petal = version.baseline?.baseline.statistics[2];
      expect(petal?.proportions.map((_, b) => field(`s:petal_length:${b}`) / 150).map((p) => Math.round(p * 1e6) / 1e6)).toEqual(
        petal?.proportions,
      );
      expect([field('p:0'), field('p:1'), field('p:2')]).toEqual([50, 50, 50]);
    },
  );

  it('when DRIFT_SAMPLE_RATE is 0, then no chunk is counted', async () => {
    const p = pool(0);

    const outcomes = await Promise.all(Array.from({ length: 10 }, () => p.run(version, chunk())));

    expect(outcomes.filter((o) => o.drift)).toEqual([]);
  });

  it('when DRIFT_SAMPLE_RATE is 0.5, then whole chunks are drawn: some counted in full, the others not at all', async () => {
    const p = pool(0.5);

    const outcomes = await Promise.all(Array.from({ length: 60 }, () => p.run(version, chunk())));
    const counted = outcomes.filter((o) => o.drift);

    // Binomial(60, 0.5) falls outside [10, 50] with probability below 1e-7.
    expect(counted.length).toBeGreaterThanOrEqual(10);
    expect(counted.length).toBeLessThanOrEqual(50);
    for (const o of counted) expect(o.drift?.counts[0]).toBe(150);
  });
});

describe('DRIFT_SAMPLE_RATE and the thresholds reach the services (API and worker in process)', () => {
  const golden = (): unknown[] =>
    (JSON.parse(readFileSync(path.join(MODELS_DIR, 'iris', '2', 'golden.json'), 'utf8')) as { inputs: unknown[] }).inputs;
  const run = async (overrides: Record<string, string>): Promise<{ keys: string[]; report: Record<string, unknown> }> => {
    const stack = await startStack(overrides);
    const redis = newRedis();
    try {
      const submitted = await fetch(`${stack.url}/v1/batch-predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'iris', version: '2', inputs: golden() }),
      });
      expect((await waitForJob(stack.url, String(((await submitted.json()) as { jobId: string }).jobId))).status).toBe('completed');
      await sleep(1500); // a flush
      const report = (await (await fetch(`${stack.url}/v1/models/iris/versions/2/drift`)).json()) as Record<string, unknown>;
      return { keys: await keysWithPrefix(redis, `${stack.config.REDIS_PREFIX}:drift`), report };
    } finally {
      await redis.quit();
      await stack.close();
    }
  };

  it('when a worker runs with DRIFT_SAMPLE_RATE=0, then nothing is counted and the API answers insufficient-data', async () => {
    const { keys, report } = await run({ DRIFT_SAMPLE_RATE: '0' });

    expect(keys).toEqual([]);
    expect(report).toMatchObject({ rows: 0, status: 'insufficient-data' });
  });

  it('when DRIFT_MIN_ROWS and the PSI thresholds are set, then the answer is judged by them', async () => {
    const { report } = await run({ DRIFT_MIN_ROWS: '100', DRIFT_WARN_PSI: '0.05', DRIFT_ALERT_PSI: '0.5' });

    expect(report).toMatchObject({ rows: 150, status: 'ok', minRows: 100, thresholds: { warn: 0.05, drift: 0.5 } });
  });
});
