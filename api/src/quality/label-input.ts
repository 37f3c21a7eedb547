import { finished, type Readable } from 'node:stream';
import { parse, type Info } from 'csv-parse';
import { ProblemError } from '@onnx-batch/contracts';
import { ndjsonRows } from '@onnx-batch/shared';

/**
 * Ground-truth labels as a client sends them, before they are matched to rows: NDJSON or JSON
 * objects, or CSV rows under a header, each `{index | id, label | value}` (docs/models-in-production.md#quality).
 */
export interface LabelEntry {
  /** 1-based line (NDJSON, CSV) or position in the JSON array. */
  line: number;
  index?: number;
  id?: string;
  label?: string;
  value?: number;
}

/** Fields a label may carry. */
const FIELDS = new Set(['index', 'id', 'label', 'value']);

export interface LabelProblem {
  line: number;
  field?: string;
  message: string;
}

/** Most problems named in one answer. */
export const MAX_LISTED_PROBLEMS = 20;

/** Throws the problems found (nothing is applied), or returns. */
export function refuseIfAny(problems: readonly LabelProblem[], total: number): void {
  if (problems.length === 0) return;
  const sorted = [...problems].sort((a, b) => a.line - b.line);
  const first = sorted[0] as LabelProblem;
  throw new ProblemError(
    'OB_ERR_INVALID_LABELS',
    `${sorted.length} of ${total} label(s) cannot be applied (first, line ${first.line}${first.field ? ` ${first.field}` : ''}: ` +
      `${first.message}); nothing was applied`,
    { errors: sorted.slice(0, MAX_LISTED_PROBLEMS) },
  );
}

/**
 * One raw label object as an entry, or a problem naming its field. `id` may be a string or an
 * integer (matched as its decimal text, as results print it).
 */
export function labelEntry(raw: unknown, line: number, problems: LabelProblem[]): LabelEntry | null {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    problems.push({ line, message: 'a label is an object {index | id, label | value}' });
    return null;
  }
  const entry: LabelEntry = { line };
  const before = problems.length;
  for (const [field, value] of Object.entries(raw as Record<string, unknown>)) {
    if (!FIELDS.has(field)) {
      problems.push({ line, field, message: 'is not a field of a label (index, id, label, value)' });
      continue;
    }
    if (value === null || value === undefined || value === '') continue;
    if (field === 'index') {
      if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) entry.index = value;
      else problems.push({ line, field, message: 'must be a row index: an integer ≥ 0' });
    } else if (field === 'id') {
      if (typeof value === 'string' && value.length <= 1024) entry.id = value;
      else if (typeof value === 'number' && Number.isSafeInteger(value)) entry.id = String(value);
      else problems.push({ line, field, message: 'must be the string or integer id the row was submitted with' });
    } else if (field === 'label') {
      if (typeof value === 'string') entry.label = value;
      else problems.push({ line, field, message: 'must be one of the model’s labels, as a string' });
    } else if (typeof value === 'number' && Number.isFinite(value)) entry.value = value;
    else problems.push({ line, field, message: 'must be a finite number' });
  }
  if (problems.length > before) return null;
  if ((entry.index === undefined) === (entry.id === undefined)) {
    problems.push({ line, message: 'give exactly one of index (the row’s position in the job) and id (the id it was submitted with)' });
    return null;
  }
  if ((entry.label === undefined) === (entry.value === undefined)) {
    problems.push({ line, message: 'give exactly one of label (classification) and value (regression)' });
    return null;
  }
  return entry;
}

/** Raw label objects of a streamed NDJSON body, with their lines. */
export async function* ndjsonLabels(body: Readable, maxLineBytes: number): AsyncGenerator<[unknown, number]> {
  const source = ndjsonRows(body, maxLineBytes);
  for await (const raw of source.rows) yield [raw, source.currentLine()];
}

/**
 * Raw label objects of a CSV body whose header names `index` or `id` and `label` or `value`:
 * `index` and `value` cells are numbers, `id` and `label` text.
 */
export async function* csvLabels(body: Readable, maxRecordBytes: number): AsyncGenerator<[unknown, number]> {
  const parser = body.pipe(
    parse({
      bom: true,
      info: true,
      skip_empty_lines: true,
      max_record_size: maxRecordBytes,
      columns: (header: string[]) => {
        const names = header.map((h) => h.trim());
        const unknown = names.find((n) => !FIELDS.has(n));
        if (unknown !== undefined)
          throw new ProblemError(
            'OB_ERR_INVALID_LABELS',
            `line 1: column '${unknown}' is not a field of a label (index, id, label, value)`,
            {
              errors: [{ line: 1, field: unknown, message: 'is not a field of a label' }],
            },
          );
        return names;
      },
    }),
  );
  finished(body, { writable: false }, (error) => {
    if (error) parser.destroy(error);
  });
  for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: Info }>) {
    const raw: Record<string, unknown> = {};
    for (const [name, cell] of Object.entries(item.record)) {
      const text = cell.trim();
      raw[name] = (name === 'index' || name === 'value') && text !== '' && Number.isFinite(Number(text)) ? Number(text) : text;
    }
    yield [raw, item.info.lines];
  }
}

/** The labels of a JSON body: an array of label objects, or `{ "labels": [...] }`. */
export function* jsonLabels(body: unknown): Generator<[unknown, number]> {
  const list = Array.isArray(body) ? body : (body as { labels?: unknown } | null)?.labels;
  if (!Array.isArray(list))
    throw new ProblemError('OB_ERR_INVALID_LABELS', 'a JSON body is an array of labels or {"labels": [...]}', {
      errors: [{ line: 0, field: 'labels', message: 'must be an array of labels' }],
    });
  let line = 0;
  for (const raw of list as unknown[]) yield [raw, ++line];
}
