import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { BASELINE_SCHEMA, type Baseline } from '@onnx-batch/shared';
import { MODELS_DIR, ROOT } from '../helpers/env';
import { loadGolden } from '../helpers/golden';
import { toBase64Bytes } from '../helpers/model-files';

/**
 * The baseline command (`npm run baseline`, i.e. worker/dist/tools/baseline.js) run as a real
 * process over reference files made from shipped golden rows: real codec, real ONNX Runtime.
 */
const COMMAND = path.join(ROOT, 'worker', 'dist', 'tools', 'baseline.js');
const IRIS_DESCRIPTION = 'scikit-learn load_iris(), all 150 rows (the training data)';
const validate = new Ajv2020({ allErrors: true, strict: true, strictRequired: false }).compile(BASELINE_SCHEMA);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function runCommand(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [COMMAND, '--models-dir', MODELS_DIR, ...args], { maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr });
    });
  });
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-baseline-command-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, lines: string[]): string {
  const target = path.join(dir, name);
  writeFileSync(target, `${lines.join('\n')}\n`);
  return target;
}

const irisRows = (): Record<string, unknown>[] => loadGolden('iris', '2').inputs;
const IRIS_COLUMNS = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];

describe('npm run baseline', () => {
  it('when run on the 150 iris rows, then it writes exactly the committed iris 2 baseline (same codec, same model)', async () => {
    // Arrange
    const input = file(
      'iris.ndjson',
      irisRows().map((r) => JSON.stringify(r)),
    );
    const out = path.join(dir, 'iris-2.json');

    // Act
    const run = await runCommand(['--model', 'iris', '--version', '2', '--input', input, '--description', IRIS_DESCRIPTION, '--out', out]);

    // Assert
    expect(run.stderr).toBe(`baseline of iris 2 from 150 rows written to ${out}\n`);
    expect(run.code).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe(readFileSync(path.join(MODELS_DIR, 'iris', '2', 'baseline.json'), 'utf8'));
  });

  it('when the same iris rows come as CSV, then the baseline is byte-identical to the NDJSON one', async () => {
    // Arrange: cells as text, converted as the API converts CSV uploads
    const csv = file('iris.csv', [IRIS_COLUMNS.join(','), ...irisRows().map((r) => IRIS_COLUMNS.map((c) => String(r[c])).join(','))]);

    // Act
    const run = await runCommand(['--model', 'iris', '--version', '2', '--input', csv, '--description', IRIS_DESCRIPTION, '--out', '-']);

    // Assert
    expect(run.code).toBe(0);
    expect(run.stdout).toBe(readFileSync(path.join(MODELS_DIR, 'iris', '2', 'baseline.json'), 'utf8'));
  });

  it('when run twice on fashion golden images, then the output has the image statistics and 10 labels and is byte-identical', async () => {
    // Arrange: the same 32 images as nested arrays and as base64 bytes
    const golden = loadGolden('fashion', '1');
    const nested = file(
      'fashion.ndjson',
      golden.inputs.map((r) => JSON.stringify(r)),
    );
    const base64 = file(
      'fashion-b64.jsonl',
      golden.inputs.map((r) => JSON.stringify({ image: toBase64Bytes(r.image) })),
    );

    // Act
    const first = await runCommand(['--model', 'fashion', '--version', '1', '--input', nested, '--out', '-']);
    const second = await runCommand(['--model', 'fashion', '--version', '1', '--input', nested, '--out', '-']);
    const fromBase64 = await runCommand(['--model', 'fashion', '--version', '1', '--input', base64, '--out', '-']);

    // Assert
    expect([first.code, second.code, fromBase64.code]).toEqual([0, 0, 0]);
    const baseline = JSON.parse(first.stdout) as Baseline;
    expect(validate(baseline)).toBe(true);
    expect(baseline.reference).toEqual({ rows: 32 });
    expect(baseline.statistics.map((s) => [s.name, s.feature, s.measure])).toEqual([
      ['image.mean', 'image', 'mean'],
      ['image.std', 'image', 'std'],
    ]);
    for (const s of baseline.statistics) expect(s.proportions).toHaveLength(s.edges.length + 1);
    expect(baseline.prediction?.kind).toBe('label');
    expect(baseline.prediction?.proportions).toHaveLength(10);
    // the golden labels, counted: the prediction shares are the model's own answers
    const labels = baseline.prediction?.kind === 'label' ? baseline.prediction.labels : [];
    const expected = labels.map((l) => Math.round(((golden.labels ?? []).filter((g) => g === l).length / 32) * 1e6) / 1e6);
    expect(baseline.prediction?.proportions).toEqual(expected);
    expect(second.stdout).toBe(first.stdout);
    expect(fromBase64.stdout).toBe(first.stdout);
  });

  it('when spam golden messages are the reference, then the vocabulary of the version is used for text.oov', async () => {
    // Arrange
    const golden = loadGolden('spam', '1');
    const input = file(
      'spam.ndjson',
      golden.inputs.map((r) => JSON.stringify(r)),
    );

    // Act
    const run = await runCommand([
      '--model',
      'spam',
      '--version',
      '1',
      '--input',
      input,
      '--description',
      '100 golden messages',
      '--out',
      '-',
    ]);

    // Assert
    expect(run.code).toBe(0);
    const baseline = JSON.parse(run.stdout) as Baseline;
    expect(validate(baseline)).toBe(true);
    expect(baseline.reference).toEqual({ rows: 100, description: '100 golden messages' });
    expect(baseline.statistics.map((s) => s.name)).toEqual(['text.length', 'text.oov']);
    expect(baseline.vocabulary).toEqual({ file: 'vocabulary.txt', tokenPattern: '[\\p{L}\\p{N}_]+', minLength: 2, lowercase: true });
    expect(baseline.prediction?.kind === 'label' ? baseline.prediction.labels : []).toEqual(['ham', 'spam']);
  });

  it('when a row is invalid, then it stops with a message naming the file, line and field, and writes nothing', async () => {
    // Arrange
    const rows = irisRows()
      .slice(0, 5)
      .map((r) => JSON.stringify(r));
    rows.splice(2, 0, '', JSON.stringify({ ...irisRows()[0], petal_width: 11 }));
    const input = file('bad.ndjson', rows);
    const out = path.join(dir, 'never.json');

    // Act
    const run = await runCommand(['--model', 'iris', '--version', '2', '--input', input, '--out', out]);

    // Assert
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`baseline: ${input} line 4: field 'petal_width' must be <= 10\n`);
    expect(() => readFileSync(out)).toThrow();
  });

  it('when a CSV cell is not a number, then the message names its line and column', async () => {
    const csv = file('bad.csv', [IRIS_COLUMNS.join(','), '5.1,3.5,1.4,0.2', '5.1,wide,1.4,0.2']);
    const run = await runCommand(['--model', 'iris', '--version', '2', '--input', csv, '--out', '-']);
    expect(run.code).toBe(1);
    expect(run.stderr).toBe(`baseline: ${csv} line 3: field 'sepal_width' must be number\n`);
  });

  it('when a required flag is missing or the format cannot be told, then it answers with usage and exit code 2', async () => {
    const missing = await runCommand(['--model', 'iris', '--input', 'x.csv']);
    const unknownFormat = await runCommand(['--model', 'iris', '--version', '2', '--input', path.join(dir, 'rows.txt')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--version is required');
    expect(missing.stderr).toContain('Usage: npm run baseline');
    expect(unknownFormat.code).toBe(2);
    expect(unknownFormat.stderr).toContain('use --format csv or --format ndjson');
  });

  it('when the model version does not exist, then it says which versions there are', async () => {
    const input = file('one.ndjson', [JSON.stringify(irisRows()[0])]);
    const run = await runCommand(['--model', 'iris', '--version', '9', '--input', input]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("model 'iris' has no version '9' (versions: 1, 2, 3)");
  });
});
