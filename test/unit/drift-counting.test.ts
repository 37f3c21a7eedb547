import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  bucketExpiry,
  buildBaseline,
  countChunk,
  countLayout,
  driftReport,
  formatBaseline,
  loadBaseline,
  OOV_EVERY,
  RedisKeys,
  restoreBaseline,
  statisticsPlan,
  transferBaseline,
  windowBuckets,
  type DriftSettings,
  type LoadedBaseline,
} from '@onnx-batch/shared';
import { driftSettings } from '@onnx-batch/api';
import { MODELS_DIR, testConfig } from '../helpers/env';
import { readManifest } from '../helpers/model-files';
import { int64Manifest, storedChunk } from './fixtures';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** 2026-01-01T10:37:30Z: minute 37 of hour 10. */
const AT_10_37 = Date.UTC(2026, 0, 1, 10, 37, 30);

const iris = async (): Promise<{ manifest: ModelManifest; baseline: LoadedBaseline }> => {
  const manifest = readManifest('iris', '2');
  return { manifest, baseline: (await loadBaseline(path.join(MODELS_DIR, 'iris', '2'), manifest)) as LoadedBaseline };
};

/** The minutes [first, last] a list of buckets covers (an hour covers its 60 minutes). */
function coveredMinutes(buckets: { unit: 'm' | 'h'; index: number }[]): number[] {
  return buckets
    .flatMap((b) => (b.unit === 'm' ? [b.index] : Array.from({ length: 60 }, (_, i) => b.index * 60 + i)))
    .sort((a, b) => a - b);
}

describe('drift time buckets', () => {
  it('when 15 minutes end at 10:37, then they are the 15 minute buckets 10:23 … 10:37', () => {
    const { from, buckets } = windowBuckets(15, AT_10_37);

    expect(buckets).toHaveLength(15);
    expect(buckets.every((b) => b.unit === 'm')).toBe(true);
    expect(new Date(from).toISOString()).toBe('2026-01-01T10:23:00.000Z');
    expect(buckets.at(-1)?.index).toBe(Math.floor(AT_10_37 / MINUTE));
  });

  it('when 15 minutes end at 10:05, then the current hour comes from its hour bucket and 9:51 … 9:59 from minutes', () => {
    const at = Date.UTC(2026, 0, 1, 10, 5, 0);

    const { buckets } = windowBuckets(15, at);

    expect(buckets.filter((b) => b.unit === 'm')).toHaveLength(9);
    expect(buckets.filter((b) => b.unit === 'h')).toEqual([{ unit: 'h', index: Math.floor(at / HOUR) }]);
  });

  it.each([
    ['15m', 15],
    ['1h', 60],
    ['24h', 1440],
  ])(
    'when a %s window is read at any minute of the hour, then its buckets cover each of its minutes once and no earlier one',
    (_label, minutes) => {
      for (let minute = 0; minute < 60; minute++) {
        const now = Date.UTC(2026, 0, 1, 10, minute, 30);
        const last = Math.floor(now / MINUTE);

        const { from, buckets } = windowBuckets(minutes, now);
        const covered = coveredMinutes(buckets);

        expect(from).toBe((last - minutes + 1) * MINUTE);
        expect(covered.filter((m) => m <= last)).toEqual(Array.from({ length: minutes }, (_, i) => last - minutes + 1 + i));
        expect(new Set(covered).size).toBe(covered.length);
        expect(covered[0]).toBe(last - minutes + 1);
      }
    },
  );

  it('when 24 hours are read, then at most 83 buckets are (never 1440 minutes)', () => {
    const counts = Array.from({ length: 60 }, (_, m) => windowBuckets(1440, Date.UTC(2026, 0, 1, 10, m)).buckets.length);

    expect(Math.max(...counts)).toBeLessThanOrEqual(83);
    expect(Math.min(...counts)).toBe(24);
  });

  it('when a bucket expires, then it is the retention after its end', () => {
    expect(bucketExpiry({ unit: 'm', index: 10 }, 48 * 3600)).toBe(11 * 60 + 48 * 3600);
    expect(bucketExpiry({ unit: 'h', index: 10 }, 3600)).toBe(11 * 3600 + 3600);
  });

  it('when bucket keys are made, then every bucket of a model carries the model as its hash tag', () => {
    const keys = new RedisKeys('ob');

    expect(keys.driftBucket('iris', '2', 'abcdef0123456789', 'm', 29_000_000)).toBe('ob:drift:{iris}:2:abcdef0123456789:m:29000000');
    expect(keys.driftBucket('iris', '1', 'abcdef0123456789', 'h', 480_000)).toBe('ob:drift:{iris}:1:abcdef0123456789:h:480000');
    expect(keys.rollout('iris')).toContain('{iris}');
  });
});

describe('countChunk (what an inference thread sends back)', () => {
  it('when iris rows are counted, then each statistic has one count per bin and the fields name them', async () => {
    // Arrange
    const { manifest, baseline } = await iris();
    const rows = [
      [5.1, 3.5, 1.4, 0.2],
      [7.0, 3.2, 4.7, 1.4],
      [1.0, 9.0, 9.0, 9.0],
    ];
    const probabilities = Float32Array.from([0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.2, 0.3, 0.5]);

    // Act
    const counts = countChunk(baseline, storedChunk(manifest, rows), { data: probabilities, width: 3 });
    const layout = countLayout(baseline);
    const byField = Object.fromEntries(layout.fields.map((f, i) => [f, counts[i]]).filter(([, n]) => n !== 0));

    // Assert: 1.4 starts bin 1 of petal_length (edges 1.4, 1.5, …, 4.64, 5, …), 4.7 is in bin 6, 9.0 in the last (≥ 5.8)
    expect(layout.fields.slice(0, 3)).toEqual(['rows', 'predictions', 's:sepal_length:0']);
    expect(layout.fields).toHaveLength(2 + 10 + 9 + 10 + 9 + 3);
    expect(byField).toMatchObject({
      rows: 3,
      predictions: 3,
      's:petal_length:1': 1,
      's:petal_length:6': 1,
      's:petal_length:9': 1,
      's:sepal_length:0': 1,
      'p:0': 1,
      'p:1': 1,
      'p:2': 1,
    });
    expect(counts.reduce((a, b) => a + b, 0)).toBe(3 + 3 + 4 * 3 + 3);
  });

  it('when a row failed (NaN outputs), then its features are counted but it has no prediction', async () => {
    const { manifest, baseline } = await iris();
    const chunk = storedChunk(manifest, [
      [5.1, 3.5, 1.4, 0.2],
      [6.1, 2.8, 4.7, 1.2],
    ]);

    const counts = countChunk(baseline, chunk, { data: Float32Array.from([Number.NaN, Number.NaN, Number.NaN, 0.1, 0.2, 0.7]), width: 3 });
    const layout = countLayout(baseline);
    const field = (name: string): number => counts[layout.fields.indexOf(name)] as number;

    expect(field('rows')).toBe(2);
    expect(field('predictions')).toBe(1);
    expect([field('p:0'), field('p:1'), field('p:2')]).toEqual([0, 0, 1]);
  });

  it('when a regression model is counted, then the first target is binned by the prediction edges as float32', async () => {
    // Arrange: the int64 regression fixture with a baseline of predictions 0 … 9.9
    const manifest = int64Manifest();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-drift-'));
    try {
      const values = [Float64Array.from({ length: 100 }, (_, i) => i), Float64Array.from({ length: 100 }, (_, i) => i % 3)];
      const predictions = Float64Array.from({ length: 100 }, (_, i) => Math.fround(i / 10));
      writeFileSync(
        path.join(dir, 'baseline.json'),
        formatBaseline(buildBaseline({ manifest, plan: statisticsPlan(manifest), values, predictions })),
      );
      const baseline = (await loadBaseline(dir, manifest)) as LoadedBaseline;
      const chunk = storedChunk(manifest, [
        { visits: 1, clicks: 0 },
        { visits: 50, clicks: 2 },
      ]);

      // Act: two targets per row; 0.99 is the first edge exactly (as float32), 100 beyond the last
      const counts = countChunk(baseline, chunk, { data: Float32Array.from([0.99, -1, 100, -1]), width: 2 });
      const layout = countLayout(baseline);

      // Assert
      expect(layout.prediction).toEqual({ offset: layout.fields.indexOf('p:0'), bins: 10 });
      expect(counts[layout.fields.indexOf('p:1')]).toBe(1);
      expect(counts[layout.fields.indexOf('p:9')]).toBe(1);
      expect(counts[layout.fields.indexOf('predictions')]).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it(
    'when a text model is counted, then its length is counted on every row and its OOV share on one row in OOV_EVERY from ' +
      'the given one',
    async () => {
      // Arrange: 10 texts; the oov sample starts at row 1: rows 1, 5 and 9
      const manifest = readManifest('spam', '1');
      const loaded = (await loadBaseline(path.join(MODELS_DIR, 'spam', '1'), manifest)) as LoadedBaseline;
      const chunk = storedChunk(
        manifest,
        Array.from({ length: 10 }, (_, i) => ({ text: `message ${i} about zzqx${i}` })),
      );
      const layout = countLayout(loaded);
      const sum = (counts: Uint32Array, name: string): number => {
        const s = layout.statistics.find((x) => x.name === name);
        return s ? counts.slice(s.offset, s.offset + s.bins).reduce((a, b) => a + b, 0) : NaN;
      };

      // Act
      const counts = countChunk(loaded, chunk, undefined, 1);

      // Assert
      expect(OOV_EVERY).toBe(4);
      expect(counts[0]).toBe(10);
      expect(sum(counts, 'text.length')).toBe(10);
      expect(sum(counts, 'text.oov')).toBe(3);
      expect(sum(countChunk(loaded, chunk, undefined, 3), 'text.oov')).toBe(2); // rows 3 and 7
    },
  );

  it('when a baseline travels to another thread as plain data, then the restored one counts the same', async () => {
    // Arrange: spam's baseline has a vocabulary (oov) as well as lengths
    const manifest = readManifest('spam', '1');
    const loaded = (await loadBaseline(path.join(MODELS_DIR, 'spam', '1'), manifest)) as LoadedBaseline;
    const chunk = storedChunk(manifest, [{ text: 'Win money now!!! Click here' }, { text: 'Meeting moved to 3pm, see agenda attached' }]);

    // Act
    const restored = restoreBaseline(manifest, structuredClone(transferBaseline(loaded)));

    // Assert
    expect(restored.digest).toBe(loaded.digest);
    expect(restored.digest).toMatch(/^[0-9a-f]{16}$/);
    expect(countChunk(restored, chunk, undefined)).toEqual(countChunk(loaded, chunk, undefined));
  });
});

describe('driftReport (pure)', () => {
  const settings: DriftSettings = { thresholds: { warn: 0.1, drift: 0.25 }, minRows: 100 };
  const window = (sums: Record<string, number>) => ({
    window: '1h',
    from: AT_10_37 - HOUR,
    to: AT_10_37,
    sums: new Map(Object.entries(sums)),
  });

  /** Sums of `rows` rows spread over the baseline's own proportions, with `edit` applied. */
  function likeBaseline(baseline: LoadedBaseline, rows: number, edit: Record<string, number> = {}): Record<string, number> {
    const sums: Record<string, number> = { rows, predictions: rows };
    for (const s of baseline.baseline.statistics) s.proportions.forEach((p, b) => (sums[`s:${s.name}:${b}`] = Math.round(p * rows)));
    baseline.baseline.prediction?.proportions.forEach((p, b) => (sums[`p:${b}`] = Math.round(p * rows)));
    return { ...sums, ...edit };
  }

  it('when fewer rows than the minimum were counted, then everything is insufficient-data, with no PSI', async () => {
    const { baseline } = await iris();

    const report = driftReport('iris', '2', baseline, window(likeBaseline(baseline, 99)), settings);

    expect(report.status).toBe('insufficient-data');
    expect(Object.values(report.features).map((f) => [f.status, f.psi])).toEqual(Array(4).fill(['insufficient-data', null]));
    expect(report.prediction).toMatchObject({ status: 'insufficient-data', psi: null });
  });

  it('when nothing was counted, then the current shares are null and the answer is insufficient-data', async () => {
    const { baseline } = await iris();

    const report = driftReport('iris', '2', baseline, window({}), settings);

    expect(report.rows).toBe(0);
    expect(report.status).toBe('insufficient-data');
    expect(report.features.sepal_length?.bins.every((b) => b.current === null)).toBe(true);
  });

  it('when one statistic warns and another drifts, then the overall status is the worst, drift', async () => {
    // Arrange: 1000 rows like the baseline, but sepal_width all in its first bin and petal_width moved a little
    const { baseline } = await iris();
    const sums = likeBaseline(baseline, 1000);
    const width = baseline.baseline.statistics[1]?.proportions.length ?? 0;
    for (let b = 0; b < width; b++) sums[`s:sepal_width:${b}`] = b === 0 ? 1000 : 0;
    sums['s:petal_width:0'] = (sums['s:petal_width:0'] ?? 0) + 100;
    sums['s:petal_width:1'] = (sums['s:petal_width:1'] ?? 0) - 100;

    // Act
    const report = driftReport('iris', '2', baseline, window(sums), settings);

    // Assert
    expect(report.features.sepal_length?.status).toBe('ok');
    expect(report.features.petal_width?.status).toBe('warn');
    expect(report.features.sepal_width?.status).toBe('drift');
    expect(Number.isFinite(report.features.sepal_width?.psi)).toBe(true); // empty bins are floored, not infinite
    expect(report.status).toBe('drift');
  });

  it('when the thresholds are raised, then the same counts are judged by them', async () => {
    const { baseline } = await iris();
    const sums = likeBaseline(baseline, 1000);
    sums['s:petal_width:0'] = (sums['s:petal_width:0'] ?? 0) + 100;
    sums['s:petal_width:1'] = (sums['s:petal_width:1'] ?? 0) - 100;

    const report = driftReport('iris', '2', baseline, window(sums), { thresholds: { warn: 0.5, drift: 1 }, minRows: 100 });

    expect(report.features.petal_width?.status).toBe('ok');
    expect(report.thresholds).toEqual({ warn: 0.5, drift: 1 });
  });

  it(
    'when enough rows were measured but most failed, then only the prediction is insufficient-data and the rest ' + 'still judged',
    async () => {
      const { baseline } = await iris();

      const report = driftReport(
        'iris',
        '2',
        baseline,
        window(likeBaseline(baseline, 1000, { predictions: 50, 'p:0': 50, 'p:1': 0, 'p:2': 0 })),
        settings,
      );

      expect(report.prediction).toMatchObject({ status: 'insufficient-data', rows: 50 });
      expect(report.status).toBe('ok');
    },
  );

  it('when bins are described, then value bins have from/to with open ends and label bins their label', async () => {
    const { baseline } = await iris();

    const report = driftReport('iris', '2', baseline, window(likeBaseline(baseline, 1500)), settings);
    const petal = report.features.petal_width?.bins ?? [];

    expect(petal[0]).toMatchObject({ from: null, to: 0.2 });
    expect(petal[1]).toMatchObject({ from: 0.2, to: 0.4 });
    expect(petal.at(-1)).toMatchObject({ from: 2.2, to: null });
    expect(report.prediction?.bins).toEqual([
      { label: 'setosa', reference: 0.333333, current: 0.333333 },
      { label: 'versicolor', reference: 0.333333, current: 0.333333 },
      { label: 'virginica', reference: 0.333333, current: 0.333333 },
    ]);
    expect(report).toMatchObject({ from: '2026-01-01T09:37:30.000Z', to: '2026-01-01T10:37:30.000Z', window: '1h', minRows: 100 });
  });
});

describe('drift settings', () => {
  it('when nothing is configured, then drift counts every chunk for 48 hours and judges at 0.1 and 0.25 from 1000 rows', () => {
    const config = testConfig();

    expect([config.DRIFT_SAMPLE_RATE, config.DRIFT_RETENTION_HOURS]).toEqual([1, 48]);
    expect(driftSettings(config)).toEqual({ thresholds: { warn: 0.1, drift: 0.25 }, minRows: 1000 });
  });

  it('when DRIFT_WARN_PSI exceeds DRIFT_ALERT_PSI or the sample rate is above 1, then the configuration is refused naming them', () => {
    expect(() => testConfig({ DRIFT_WARN_PSI: '0.3', DRIFT_ALERT_PSI: '0.2' })).toThrow(
      'DRIFT_WARN_PSI=0.3 must not exceed DRIFT_ALERT_PSI=0.2',
    );
    expect(() => testConfig({ DRIFT_SAMPLE_RATE: '1.5' })).toThrow('DRIFT_SAMPLE_RATE');
    expect(testConfig({ DRIFT_SAMPLE_RATE: '0.25' }).DRIFT_SAMPLE_RATE).toBe(0.25);
  });
});
