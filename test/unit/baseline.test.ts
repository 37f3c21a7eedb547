import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  BASELINE_SCHEMA,
  BaselineError,
  buildBaseline,
  formatBaseline,
  loadBaseline,
  statisticsPlan,
  type Baseline,
} from '@onnx-batch/shared';
import { MODELS_DIR } from '../helpers/env';
import { discoverModelVersions, readManifest } from '../helpers/model-files';
import { int64Manifest, multiInputManifest } from './fixtures';

const validate = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(BASELINE_SCHEMA);

/** A temporary version directory holding a copy of a shipped version's baseline (and vocabulary). */
function versionCopy(
  name: string,
  version: string,
): { dir: string; manifest: ModelManifest; baseline: Baseline; write: (b: unknown) => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-baseline-'));
  cpSync(path.join(MODELS_DIR, name, version), dir, { recursive: true });
  const baseline = JSON.parse(readFileSync(path.join(dir, 'baseline.json'), 'utf8')) as Baseline;
  return {
    dir,
    manifest: readManifest(name, version),
    baseline,
    write: (b) => writeFileSync(path.join(dir, 'baseline.json'), JSON.stringify(b)),
  };
}

async function problemOf(dir: string, manifest: ModelManifest): Promise<BaselineError> {
  const error = await loadBaseline(dir, manifest).then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BaselineError);
  return error as BaselineError;
}

const temporaries: string[] = [];
function copy(name: string, version: string): ReturnType<typeof versionCopy> {
  const c = versionCopy(name, version);
  temporaries.push(c.dir);
  return c;
}
afterAll(() => temporaries.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

describe('shipped baselines', () => {
  const versions = discoverModelVersions();

  it.each(versions.map((v) => [`${v.name} ${v.version}`, v.name, v.version]))(
    'when %s is loaded, then its baseline.json passes the schema and agrees with its manifest',
    async (_label, name, version) => {
      // Arrange
      const dir = path.join(MODELS_DIR, name, version);
      const manifest = readManifest(name, version);
      const text = readFileSync(path.join(dir, 'baseline.json'), 'utf8');

      // Act
      const schemaValid = validate(JSON.parse(text));
      const loaded = await loadBaseline(dir, manifest);

      // Assert
      expect(validate.errors ?? []).toEqual([]);
      expect(schemaValid).toBe(true);
      expect(loaded).not.toBeNull();
      expect(loaded?.baseline.model).toBe(name);
      // every statistic the manifest has (with its vocabulary, if any) is in the baseline, in plan order
      expect(loaded?.plan.map((p) => p.name)).toEqual(statisticsPlan(manifest, loaded?.vocabulary ?? undefined).map((p) => p.name));
      expect(loaded?.bins.map((b) => b.length)).toEqual(loaded?.baseline.statistics.map((s) => s.edges.length));
      // the committed text is what formatBaseline writes (byte-identical re-runs)
      expect(formatBaseline(JSON.parse(text) as Baseline)).toBe(text);
    },
  );

  it('when spam 1 is loaded, then its vocabulary file becomes a set of tokens and text has a length and an oov statistic', async () => {
    // Act
    const loaded = await loadBaseline(path.join(MODELS_DIR, 'spam', '1'), readManifest('spam', '1'));

    // Assert
    const lines = readFileSync(path.join(MODELS_DIR, 'spam', '1', 'vocabulary.txt'), 'utf8')
      .split('\n')
      .filter(Boolean);
    expect(loaded?.vocabulary?.tokens.size).toBe(lines.length);
    expect(lines).toEqual([...new Set(lines)].sort());
    expect(loaded?.plan.map((p) => p.name)).toEqual(['text.length', 'text.oov']);
    expect(loaded?.baseline.vocabulary).toEqual({
      file: 'vocabulary.txt',
      tokenPattern: '[\\p{L}\\p{N}_]+',
      minLength: 2,
      lowercase: true,
    });
  });

  it('when iris 2 is loaded, then its value bins compare as float32 (a row sent as an edge lands in the bin it starts)', async () => {
    const loaded = await loadBaseline(path.join(MODELS_DIR, 'iris', '2'), readManifest('iris', '2'));
    const edges = loaded?.baseline.statistics[3]?.edges ?? [];
    expect(Array.from(loaded?.bins[3] ?? [])).toEqual(edges.map((e) => Math.fround(e)));
  });
});

describe('loadBaseline refusals', () => {
  it('when a version has no baseline.json, then it answers null', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-baseline-'));
    temporaries.push(dir);
    await expect(loadBaseline(dir, readManifest('iris', '2'))).resolves.toBeNull();
  });

  it('when baseline.json is not JSON, then the error names the file', async () => {
    const c = copy('iris', '2');
    writeFileSync(path.join(c.dir, 'baseline.json'), '{"format": 1,');
    const error = await problemOf(c.dir, c.manifest);
    expect(error.message).toContain(`${path.join(c.dir, 'baseline.json')}: is not valid JSON`);
  });

  it('when a statistic names an unknown feature, then the error names the file and the field', async () => {
    // Arrange
    const c = copy('iris', '2');
    const stat = c.baseline.statistics[0];
    if (stat) Object.assign(stat, { name: 'sepal_size', feature: 'sepal_size' });
    c.write(c.baseline);

    // Act
    const error = await problemOf(c.dir, c.manifest);

    // Assert
    expect(error.problems).toEqual([
      {
        file: path.join(c.dir, 'baseline.json'),
        field: 'statistics.0.feature',
        message: "names unknown feature 'sepal_size' (features: sepal_length, sepal_width, petal_length, petal_width)",
      },
    ]);
    expect(error.message).toContain('baseline.json (statistics.0.feature): names unknown feature');
  });

  it('when the labels differ from the manifest, then the error names prediction.labels', async () => {
    const c = copy('iris', '2');
    c.write({ ...c.baseline, prediction: { kind: 'label', labels: ['setosa', 'virginica', 'versicolor'], proportions: [0.3, 0.3, 0.4] } });
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => p.field)).toEqual(['prediction.labels']);
    expect(error.message).toContain("must be the manifest's labels in order (setosa, versicolor, virginica)");
  });

  it('when proportions do not hold edges + 1 numbers, then the schema refuses them by field', async () => {
    const c = copy('iris', '2');
    const stat = c.baseline.statistics[1];
    if (stat) stat.proportions = stat.proportions.slice(1);
    c.write(c.baseline);
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => p.field)).toContain('statistics.1.proportions');
    expect(error.message).toMatch(/statistics\.1\.proportions\): must NOT have fewer than \d+ items/);
  });

  it('when edges are not strictly increasing or proportions do not sum to 1, then each is named', async () => {
    const c = copy('iris', '2');
    c.write({
      ...c.baseline,
      statistics: [{ name: 'sepal_length', feature: 'sepal_length', measure: 'value', edges: [5, 5], proportions: [0.2, 0.2, 0.2] }],
    });
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      'statistics.0.edges: must be strictly increasing (5 then 5)',
      'statistics.0.proportions: must sum to 1 (they sum to 0.6000000000000001)',
    ]);
  });

  it('when a measure does not fit the feature or the name is not the derived one, then it is refused', async () => {
    const c = copy('iris', '2');
    c.write({
      ...c.baseline,
      statistics: [
        { name: 'sepal_length.mean', feature: 'sepal_length', measure: 'mean', edges: [5], proportions: [0.5, 0.5] },
        { name: 'width', feature: 'sepal_width', measure: 'value', edges: [5], proportions: [0.5, 0.5] },
      ],
    });
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      "statistics.0.measure: 'mean' is not a measure of number feature 'sepal_length' (measures: value)",
      "statistics.1.name: must be 'sepal_width'",
    ]);
  });

  it('when the model or version differs from the manifest, then both are named', async () => {
    const c = copy('iris', '2');
    c.write({ ...c.baseline, model: 'irises', version: '1' });
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => p.field)).toEqual(['model', 'version']);
  });

  it('when the vocabulary file is missing, then vocabulary.file is named', async () => {
    const c = copy('spam', '1');
    rmSync(path.join(c.dir, 'vocabulary.txt'));
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => p.field)).toEqual(['vocabulary.file', 'statistics.1.measure']);
    expect(error.message).toContain('cannot read');
  });

  it('when an oov statistic has no vocabulary, then it is refused', async () => {
    const c = copy('spam', '1');
    const { vocabulary: _vocabulary, ...rest } = c.baseline;
    c.write(rest);
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      "statistics.1.measure: 'oov' needs the baseline's 'vocabulary'",
    ]);
  });

  it('when a vocabulary file names a path outside the version directory, then the schema refuses it', async () => {
    const c = copy('spam', '1');
    c.write({ ...c.baseline, vocabulary: { ...c.baseline.vocabulary, file: '../../secrets.txt' } });
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => p.field)).toEqual(['vocabulary.file']);
  });

  it('when a classifier baseline has no prediction or a value prediction, then it is refused', async () => {
    const c = copy('iris', '2');
    const { prediction: _prediction, ...rest } = c.baseline;
    c.write(rest);
    expect((await problemOf(c.dir, c.manifest)).problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      'prediction: is required for a classification model',
    ]);
    c.write({ ...rest, prediction: { kind: 'value', edges: [1], proportions: [0.5, 0.5] } });
    expect((await problemOf(c.dir, c.manifest)).problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      "prediction.kind: must be 'label' for a classification model",
    ]);
  });

  it('when a label prediction also carries edges, then the schema refuses them', async () => {
    const c = copy('iris', '2');
    c.write({ ...c.baseline, prediction: { ...c.baseline.prediction, edges: [1] } });
    const error = await problemOf(c.dir, c.manifest);
    expect(error.problems.map((p) => `${p.field}: ${p.message}`)).toContain('prediction.edges: is not allowed here');
  });
});

describe('buildBaseline and formatBaseline', () => {
  it('when a regression baseline is built, written and loaded, then it round-trips with value bins and deterministic text', async () => {
    // Arrange: int64 visits/clicks stored as float64, float32 regression output
    const manifest = int64Manifest();
    const plan = statisticsPlan(manifest);
    const visits = Float64Array.from({ length: 100 }, (_, i) => i);
    const clicks = Float64Array.from({ length: 100 }, (_, i) => i % 3);
    const predictions = Float64Array.from({ length: 100 }, (_, i) => Math.fround(i / 10));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-baseline-'));
    temporaries.push(dir);

    // Act
    const baseline = buildBaseline({ manifest, plan, values: [visits, clicks], predictions, description: 'synthetic' });
    const text = formatBaseline(baseline);
    writeFileSync(path.join(dir, 'baseline.json'), text);
    const loaded = await loadBaseline(dir, manifest);

    // Assert
    expect(text).toBe(formatBaseline(buildBaseline({ manifest, plan, values: [visits, clicks], predictions, description: 'synthetic' })));
    expect(baseline.statistics[0]).toEqual({
      name: 'visits',
      feature: 'visits',
      measure: 'value',
      edges: [9.9, 19.8, 29.7, 39.6, 49.5, 59.4, 69.3, 79.2, 89.1],
      proportions: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
    });
    expect(baseline.statistics[1]).toEqual({
      name: 'clicks',
      feature: 'clicks',
      measure: 'value',
      edges: [0, 1, 2],
      proportions: [0, 0.34, 0.33, 0.33],
    });
    expect(baseline.prediction).toEqual({
      kind: 'value',
      edges: [0.99, 1.98, 2.97, 3.96, 4.95, 5.94, 6.93, 7.92, 8.91],
      proportions: [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1],
    });
    expect(loaded?.baseline).toEqual(baseline);
    expect(loaded?.prediction?.bins).toEqual(
      Float64Array.from(baseline.prediction?.kind === 'value' ? baseline.prediction.edges.map((e) => Math.fround(e)) : []),
    );
    expect(text).toContain('"edges": [0, 1, 2],');
  });

  it('when a tensor model gets a baseline, then it has no prediction, and one given is refused', async () => {
    // Arrange
    const manifest = multiInputManifest();
    const plan = statisticsPlan(manifest);
    const values = plan.map(() => Float64Array.from([1, 2, 3]));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-baseline-'));
    temporaries.push(dir);

    // Act
    const baseline = buildBaseline({ manifest, plan, values, predictions: null });
    writeFileSync(path.join(dir, 'baseline.json'), formatBaseline(baseline));
    const loaded = await loadBaseline(dir, manifest);
    writeFileSync(
      path.join(dir, 'baseline.json'),
      JSON.stringify({ ...baseline, prediction: { kind: 'value', edges: [1], proportions: [0, 1] } }),
    );
    const refused = await problemOf(dir, manifest);

    // Assert
    expect(baseline.prediction).toBeUndefined();
    expect(baseline.reference).toEqual({ rows: 3 });
    expect(loaded?.prediction).toBeNull();
    expect(refused.problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      'prediction: is not allowed: a tensor model has no prediction statistic',
    ]);
  });

  it('when there are no reference rows, then building refuses', () => {
    const manifest = int64Manifest();
    expect(() =>
      buildBaseline({
        manifest,
        plan: statisticsPlan(manifest),
        values: [new Float64Array(0), new Float64Array(0)],
        predictions: new Float64Array(0),
      }),
    ).toThrow('at least one reference row');
  });

  it('when every shipped version is listed, then each has a baseline.json', () => {
    for (const { name, version } of discoverModelVersions())
      expect([name, version, existsSync(path.join(MODELS_DIR, name, version, 'baseline.json'))]).toEqual([name, version, true]);
  });
});
