import { ProblemError, type FieldError } from '@onnx-batch/contracts';
import type { ModelVersion } from '../model-repository';
import type { QualityKind } from '../quality/quality-counters';

/** Most bad rows one refused evaluation set names. */
export const MAX_LISTED_ROWS = 20;

/**
 * An evaluation set's rows as they arrive: each a row as a client submits it (an object of
 * features, optionally with an `id`) plus its truth, `label` (classification: one of the model's
 * labels) or `value` (regression: a finite number). Splits each into the row to run and the truth
 * to keep; every bad row is named (up to MAX_LISTED_ROWS), and nothing is kept of a refused set.
 */
export interface LabelledRows {
  rows: Iterable<unknown> | AsyncIterable<unknown>;
  /** Rows named by 0-based index (a JSON array) or by the 1-based line a stream is at (NDJSON, CSV, a repository file). */
  location: 'row' | (() => number);
}

/** Truths as stored beside an evaluation: a uint16 class index, or a float64 value, a row. */
export function truthWidth(kind: QualityKind): number {
  return kind === 'classification' ? 2 : 8;
}

export function encodeTruths(kind: QualityKind, truths: ArrayLike<number>): Buffer {
  const width = truthWidth(kind);
  const out = Buffer.alloc(truths.length * width);
  for (let r = 0; r < truths.length; r++) {
    if (kind === 'classification') out.writeUInt16LE(truths[r] as number, r * width);
    else out.writeDoubleLE(truths[r] as number, r * width);
  }
  return out;
}

export function decodeTruths(kind: QualityKind, buffer: Buffer): Float64Array {
  const width = truthWidth(kind);
  const out = new Float64Array(Math.floor(buffer.length / width));
  for (let r = 0; r < out.length; r++) out[r] = kind === 'classification' ? buffer.readUInt16LE(r * width) : buffer.readDoubleLE(r * width);
  return out;
}

/** The field a row's truth is in, for a model's result kind. */
export function truthField(kind: QualityKind): 'label' | 'value' {
  return kind === 'classification' ? 'label' : 'value';
}

/**
 * Reads labelled rows, validating each row against the version's input schema and its truth
 * against its labels, and hands each valid row (truth removed) to `keep`. Answers the truths in
 * row order. Throws OB_ERR_INVALID_ROWS naming every bad row (up to MAX_LISTED_ROWS; reading
 * stops there), OB_ERR_TOO_MANY_ROWS past `maxRows`, OB_ERR_INVALID_REQUEST for an empty set.
 */
export async function splitLabelledRows(
  source: LabelledRows,
  version: ModelVersion,
  kind: QualityKind,
  maxRows: number,
  keep: (row: Record<string, unknown>) => Promise<void> | void,
): Promise<Float64Array> {
  const labels = version.manifest.result.labels ?? [];
  const field = truthField(kind);
  const other = field === 'label' ? 'value' : 'label';
  const truths: number[] = [];
  const errors: FieldError[] = [];
  let index = 0;
  for await (const raw of source.rows) {
    const where: FieldError = source.location === 'row' ? { row: index, message: '' } : { line: source.location(), message: '' };
    index++;
    if (index > maxRows)
      throw new ProblemError('OB_ERR_TOO_MANY_ROWS', `an evaluation set may hold at most ${maxRows} rows (EVALUATION_MAX_ROWS)`);
    const problem = (message: string, name?: string): void => {
      errors.push({ ...where, ...(name === undefined ? {} : { field: name }), message });
    };
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      problem(`a labelled row is an object of the model's features with its '${field}'`);
    } else {
      const { [field]: truth, ...row } = raw as Record<string, unknown>;
      let value: number | null = null;
      if (other in row) problem(`is not a field of a labelled row of ${version.manifest.name}: give '${field}'`, other);
      else if (truth === undefined || truth === null)
        problem(
          kind === 'classification'
            ? `is missing: every row carries its true label (${labels.join(', ')})`
            : 'is missing: every row carries its true value (a number)',
          field,
        );
      else if (kind === 'classification') {
        const k = typeof truth === 'string' ? labels.indexOf(truth) : -1;
        const shown = (typeof truth === 'string' ? truth : JSON.stringify(truth)).slice(0, 100);
        if (k < 0) problem(`'${shown}' is not a label of ${version.manifest.name} (labels: ${labels.join(', ')})`, field);
        else value = k;
      } else if (typeof truth === 'number' && Number.isFinite(truth)) value = truth;
      else problem('must be a finite number', field);
      // A row with the other truth field is named for it alone (to the validator it is one more unknown field).
      const invalid = other in row ? null : version.validator.check(row);
      if (invalid) errors.push({ ...where, ...invalid });
      if (value !== null && invalid === null && errors.length === 0) {
        truths.push(value);
        await keep(row);
      }
    }
    if (errors.length >= MAX_LISTED_ROWS) break;
  }
  if (errors.length > 0) {
    const first = errors[0] as FieldError;
    const at = first.row !== undefined ? `row ${first.row}` : `line ${first.line ?? '?'}`;
    throw new ProblemError(
      'OB_ERR_INVALID_ROWS',
      `${errors.length}${errors.length >= MAX_LISTED_ROWS ? ' or more' : ''} labelled row(s) are invalid (first, ${at}` +
        `${first.field ? ` field '${first.field}'` : ''}: ${first.message}); no evaluation was started`,
      { errors },
    );
  }
  if (index === 0)
    throw new ProblemError('OB_ERR_INVALID_REQUEST', 'the evaluation set holds no rows', {
      errors: [{ field: 'rows', message: 'must not be empty' }],
    });
  return Float64Array.from(truths);
}
