import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { Redis } from 'ioredis';
import { dropPrefix, keysWithPrefix, MODELS_DIR, newRedis, testEnv, type TestEnv } from '../helpers/env';
import { addVersionCopy, copyModels, type ModelsCopy } from '../helpers/model-files';
import type { DriftReport, StatisticDrift } from '@onnx-batch/shared';
import { parseExposition, sampleValue } from '../helpers/prometheus';
import { eventually, ProcessGroup } from '../helpers/reliability';

/**
 * Drift statistics through real processes: an API and a worker on the shared Redis, the shipped
 * models and their baselines, DRIFT_MIN_ROWS at its default (1000). Rows go in as jobs; the
 * worker counts them in its inference thread and flushes once a second; the API answers PSI.
 */
type Json = Record<string, unknown>;
const golden = (name: string, version: string): Json[] =>
  (JSON.parse(readFileSync(path.join(MODELS_DIR, name, version, 'golden.json'), 'utf8')) as { inputs: Json[] }).inputs;
/** The share of the window's rows in the bins from `edge` up. */
const shareFrom = (statistic: StatisticDrift, edge: number): number =>
  statistic.bins.filter((b) => 'from' in b && b.from != null && b.from >= edge).reduce((sum, b) => sum + (b.current ?? 0), 0);
const repeat = <T>(rows: T[], times: number): T[] => Array.from({ length: rows.length * times }, (_, i) => rows[i % rows.length] as T);

describe('drift statistics: workers count production rows, the API answers PSI and exports gauges', () => {
  const group = new ProcessGroup();
  const client: Redis = newRedis();
  let env: TestEnv;
  let models: ModelsCopy;
  let url = '';

  const submit = async (model: string, version: string, inputs: unknown[]): Promise<void> => {
    const response = await fetch(`${url}/v1/batch-predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model, version, inputs }),
    });
    const body = (await response.json()) as Json;
    if (response.status !== 202) throw new Error(`submit: ${response.status} ${JSON.stringify(body)}`);
    for (;;) {
      const status = (await (await fetch(`${url}/v1/batch-result/${String(body.jobId)}?wait=5`)).json()) as Json;
      if (status.status === 'completed') return;
      if (['failed', 'cancelled'].includes(String(status.status)))
        throw new Error(`job ${String(body.jobId)} ended ${String(status.status)}`);
    }
  };
  const drift = async (model: string, version: string, query = ''): Promise<{ status: number; body: Json }> => {
    const response = await fetch(`${url}/v1/models/${model}/versions/${version}/drift${query}`);
    return { status: response.status, body: (await response.json()) as Json };
  };
  /** The report once the worker has flushed `rows` rows of the version (it flushes once a second). */
  const reportWith = async (model: string, version: string, rows: number, query = ''): Promise<DriftReport> => {
    let last: Json = {};
    await eventually(
      `${model} ${version} counts ${rows} rows`,
      async () => {
        last = (await drift(model, version, query)).body;
        return last.rows === rows;
      },
      15_000,
      200,
    );
    return last as unknown as DriftReport;
  };
  const statuses = (report: DriftReport): Record<string, string> =>
    Object.fromEntries(Object.entries(report.features).map(([name, s]) => [name, s.status]));

  beforeAll(async () => {
    models = copyModels(['iris/1', 'iris/2', 'spam/1', 'fashion/1']);
    addVersionCopy(models, 'spam', '1', '2'); // the copy's baseline is version 1's, renamed
    addVersionCopy(models, 'fashion', '1', '2');
    rmSync(path.join(addVersionCopy(models, 'iris', '2', '3'), 'baseline.json'));
    env = testEnv({ MODELS_DIR: models.dir, RATE_LIMIT_PER_MINUTE: '0', MAX_ACTIVE_JOBS_PER_TENANT: '1000' });
    url = (await group.api(env)).url;
    await group.worker(env);
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    await dropPrefix(client, env.REDIS_PREFIX);
    await client.quit();
    models.remove();
  });

  it(
    'when fewer rows than DRIFT_MIN_ROWS (default 1000) were run, then every statistic and the whole answer are ' + 'insufficient-data',
    async () => {
      // Arrange: 900 rows, drawn like the baseline (iris 2's reference is the 150 rows of its golden file).
      await submit('iris', '2', repeat(golden('iris', '2'), 6));

      // Act
      const report = await reportWith('iris', '2', 900);

      // Assert
      expect(report).toMatchObject({ model: 'iris', version: '2', window: '1h', rows: 900, status: 'insufficient-data' });
      expect(new Set(Object.values(statuses(report)))).toEqual(new Set(['insufficient-data']));
      expect(report.features.petal_length?.psi).toBeNull();
      expect(report.prediction).toMatchObject({ status: 'insufficient-data', psi: null, rows: 900 });
    },
  );

  it(
    'when rows drawn like the baseline pass the minimum, then every feature and the prediction are ok, and the bins carry ' +
      'bounds and shares',
    async () => {
      // Arrange: 300 more of the same rows, 1200 in all.
      await submit('iris', '2', repeat(golden('iris', '2'), 2));

      // Act
      const report = await reportWith('iris', '2', 1200);

      // Assert
      expect(report.status).toBe('ok');
      expect(statuses(report)).toEqual({ sepal_length: 'ok', sepal_width: 'ok', petal_length: 'ok', petal_width: 'ok' });
      for (const statistic of Object.values(report.features)) expect(statistic.psi).toBeLessThan(0.001);
      expect(report.prediction).toMatchObject({ status: 'ok', rows: 1200 });
      const petal = report.features.petal_length as StatisticDrift;
      expect(petal.bins[0]).toEqual({ from: null, to: 1.4, reference: 0.073333, current: 0.073333 });
      expect(petal.bins[1]).toMatchObject({ from: 1.4, to: 1.5 });
      expect(petal.bins.at(-1)).toMatchObject({ from: 5.8, to: null });
      expect(report.prediction?.bins.map((b) => ('label' in b ? b.label : null))).toEqual(['setosa', 'versicolor', 'virginica']);
      // …and the answer is what /openapi.json says it is.
      const document = (await (await fetch(`${url}/openapi.json`)).json()) as { components: Json };
      const validate = new Ajv2020({ strict: false, validateFormats: false }).compile({
        $ref: '#/components/schemas/DriftReport',
        components: document.components,
      });
      expect(validate(report) ? [] : validate.errors).toEqual([]);
    },
  );

  it(
    'when the same rows come with petal_length + 2 cm, then petal_length alone of the features drifts, and ' + '/metrics shows it',
    async () => {
      // Arrange: iris 1 (same features, its own baseline of the same 150 rows), 1050 shifted rows.
      const shifted = golden('iris', '1').map((row) => ({
        ...row,
        petal_length: Math.round(((row.petal_length as number) + 2) * 10) / 10,
      }));
      await submit('iris', '1', repeat(shifted, 7));

      // Act
      const report = await reportWith('iris', '1', 1050);
      const metrics = parseExposition(await (await fetch(`${url}/metrics`)).text());

      // Assert
      expect(statuses(report)).toEqual({ sepal_length: 'ok', sepal_width: 'ok', petal_length: 'drift', petal_width: 'ok' });
      expect(report.status).toBe('drift');
      expect(report.features.petal_length?.psi).toBeGreaterThan(0.25);
      const gauge = (version: string, feature: string): number | undefined =>
        sampleValue(metrics, 'onnx_batch_feature_psi', { model: 'iris', version, feature });
      expect(gauge('1', 'petal_length')).toBe(report.features.petal_length?.psi);
      expect(gauge('1', 'sepal_length')).toBeLessThan(0.1);
      expect(gauge('2', 'petal_length')).toBeLessThan(0.1);
      expect(sampleValue(metrics, 'onnx_batch_prediction_psi', { model: 'iris', version: '2' })).toBeLessThan(0.1);
      expect(sampleValue(metrics, 'onnx_batch_prediction_psi', { model: 'iris', version: '1' })).toBe(report.prediction?.psi);
    },
  );

  it(
    'when texts get longer (each golden text three times over), then text.length drifts towards the long bins; the OOV share, ' +
      'counted on a quarter of the rows, has too few to judge',
    async () => {
      // Arrange: spam 1 and 2 share one baseline; 1000 golden texts to 1, the same lengthened to 2.
      const texts = golden('spam', '1');
      await submit('spam', '1', repeat(texts, 10));
      await submit(
        'spam',
        '2',
        repeat(texts, 10).map((row) => ({ ...row, text: `${String(row.text)}\n${String(row.text)}\n${String(row.text)}` })),
      );

      // Act
      const plain = await reportWith('spam', '1', 1000);
      const longer = await reportWith('spam', '2', 1000);

      // Assert
      expect(Object.keys(longer.features)).toEqual(['text.length', 'text.oov']);
      expect(longer.features['text.length']).toMatchObject({ status: 'drift', rows: 1000 });
      expect(longer.features['text.length']?.psi).toBeGreaterThan((plain.features['text.length']?.psi ?? 0) + 0.5);
      // The reference's longest fifth starts at 3456.8 characters: the golden texts (≤ 5000) rarely reach it, tripled a third do.
      expect(shareFrom(plain.features['text.length'] as StatisticDrift, 3456.8)).toBeLessThan(0.1);
      expect(shareFrom(longer.features['text.length'] as StatisticDrift, 3456.8)).toBeGreaterThan(0.3);
      // One row in four of each chunk (4000 rows a chunk: one chunk here).
      expect(longer.features['text.oov']).toMatchObject({ status: 'insufficient-data', psi: null, rows: 250 });
      expect(longer.status).toBe('drift');
    },
  );

  it('when images get darker (pixels × 0.3), then image.mean drifts into the darkest bins', async () => {
    // Arrange: fashion 1 and 2 share one baseline; 1024 golden images to 1, the same darkened to 2.
    const images = golden('fashion', '1');
    const darker = images.map((row) => ({ ...row, image: (row.image as number[][]).map((line) => line.map((p) => Math.round(p * 0.3))) }));
    await submit('fashion', '1', repeat(images, 32));
    await submit('fashion', '2', repeat(darker, 32));

    // Act
    const plain = await reportWith('fashion', '1', 1024);
    const dark = await reportWith('fashion', '2', 1024);

    // Assert
    expect(Object.keys(dark.features)).toEqual(['image.mean', 'image.std']);
    expect(dark.features['image.mean']?.status).toBe('drift');
    expect(dark.features['image.mean']?.psi).toBeGreaterThan((plain.features['image.mean']?.psi ?? 0) + 0.5);
    // The reference's darkest fifth has a mean below 42.8875: every darkened image does.
    expect(shareFrom(dark.features['image.mean'] as StatisticDrift, 42.8875)).toBe(0);
    expect(shareFrom(plain.features['image.mean'] as StatisticDrift, 42.8875)).toBeGreaterThan(0.7);
    expect(dark.status).toBe('drift');
  });

  it('when windows are asked for, then each answers its span, and an unknown window is a 400 naming the field', async () => {
    // Act
    const quarter = await drift('iris', '2', '?window=15m');
    const day = await drift('iris', '2', '?window=24h');
    const bad = await drift('iris', '2', '?window=2h');

    // Assert
    expect(quarter.body).toMatchObject({ window: '15m', rows: 1200 });
    expect(day.body).toMatchObject({ window: '24h', rows: 1200 });
    const span = (body: Json): number => Date.parse(String(body.to)) - Date.parse(String(body.from));
    expect(span(quarter.body)).toBeGreaterThan(14 * 60_000);
    expect(span(quarter.body)).toBeLessThanOrEqual(15 * 60_000);
    expect(span(day.body)).toBeGreaterThan(1439 * 60_000);
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'OB_ERR_INVALID_REQUEST', errors: [{ field: 'window' }] });
  });

  it('when a version has no baseline, then its drift is a 404 problem saying so; an unknown version is a 404 of its own', async () => {
    const none = await drift('iris', '3');
    const unknown = await drift('iris', '9');

    expect(none.status).toBe(404);
    expect(none.body).toMatchObject({ code: 'OB_ERR_BASELINE_NOT_FOUND' });
    expect(String(none.body.detail)).toContain('no baseline.json');
    expect(unknown.body).toMatchObject({ code: 'OB_ERR_VERSION_NOT_FOUND' });
  });

  it(
    'when the counts are in Redis, then they are minute and hour hashes tagged by model, each with an expiry within ' +
      'DRIFT_RETENTION_HOURS (48) of its end',
    async () => {
      const keys = await keysWithPrefix(client, `${env.REDIS_PREFIX}:drift`);
      const ttls = await Promise.all(keys.map((k) => client.ttl(k)));

      expect(keys.length).toBeGreaterThanOrEqual(2 * 6); // iris 1, 2; spam 1, 2; fashion 1, 2: a minute and an hour each at least
      for (const key of keys)
        expect(key).toMatch(new RegExp(`^${env.REDIS_PREFIX}:drift:\\{(iris|spam|fashion)\\}:\\d+:[0-9a-f]{16}:(m|h):\\d+$`));
      for (const [i, ttl] of ttls.entries()) expect(ttl).toBeLessThanOrEqual(48 * 3600 + ((keys[i] as string).includes(':h:') ? 3600 : 60));
      for (const ttl of ttls) expect(ttl).toBeGreaterThan(47 * 3600);
    },
  );
});
