import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RowValidator } from '@onnx-batch/shared';
import { MODELS_DIR } from '../helpers/env';
import { discoverModelVersions, readManifest } from '../helpers/model-files';

/** Every model version of models/ with an evaluation set: a version added there is covered without edits. */
const WITH_EVALUATION = discoverModelVersions()
  .map(({ name, version }) => ({ name, version, id: `${name}@${version}`, manifest: readManifest(name, version) }))
  .filter(({ manifest }) => manifest.evaluation !== undefined);

function evaluationLines(name: string, version: string, file: string): string[] {
  const text = readFileSync(path.join(MODELS_DIR, name, version, file), 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

describe('the evaluation sets of models/ (models/evaluation_sets.py)', () => {
  it('when models/ is scanned, then every shipped version has an evaluation set', () => {
    expect(WITH_EVALUATION.map((v) => v.id)).toEqual(
      expect.arrayContaining(['diabetes@1', 'fashion@1', 'iris@1', 'iris@2', 'iris@3', 'spam@1']),
    );
  });

  it.each(WITH_EVALUATION)(
    'when the evaluation set of $id is read, then it has the manifest rows, ids eval-0001.. in order, and every row is a ' +
      'valid row of the version with its true outcome',
    ({ name, version, manifest }) => {
      const evaluation = manifest.evaluation!;
      const validator = new RowValidator(manifest);
      const labels = new Set(manifest.result.labels ?? []);

      const lines = evaluationLines(name, version, evaluation.file);

      expect(lines).toHaveLength(evaluation.rows);
      const problems: string[] = [];
      lines.forEach((line, i) => {
        const { label, value, ...row } = JSON.parse(line) as Record<string, unknown>;
        if (row.id !== `eval-${String(i + 1).padStart(4, '0')}`) problems.push(`line ${i + 1}: id ${String(row.id)}`);
        const invalid = validator.check(row);
        if (invalid) problems.push(`line ${i + 1}: ${invalid.field ?? ''} ${invalid.message}`);
        if (manifest.task === 'classification' && (typeof label !== 'string' || !labels.has(label) || value !== undefined))
          problems.push(`line ${i + 1}: label ${String(label)}`);
        if (manifest.task === 'regression' && (typeof value !== 'number' || !Number.isFinite(value) || label !== undefined))
          problems.push(`line ${i + 1}: value ${String(value)}`);
      });
      expect(problems).toEqual([]);
    },
  );

  it.each(WITH_EVALUATION.filter(({ manifest }) => manifest.task === 'classification'))(
    'when the evaluation set of $id is read, then every label of the model occurs in it',
    ({ name, version, manifest }) => {
      const seen = new Set(
        evaluationLines(name, version, manifest.evaluation!.file).map((l) => (JSON.parse(l) as { label: string }).label),
      );

      expect([...seen].sort()).toEqual([...(manifest.result.labels ?? [])].sort());
    },
  );
});
