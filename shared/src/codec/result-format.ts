import type { ModelManifest } from '@onnx-batch/contracts';
import type { RowId } from './chunk-codec';
import { formatFloat } from './float-format';

/** An output tensor as ONNX Runtime returns it, without ORT types. */
export interface OutputData {
  data: ArrayLike<number | bigint | string | boolean>;
  dims: readonly number[];
}

export interface RowError {
  code: string;
  message: string;
}

function toJsonNumber(value: number | bigint | string | boolean): number | string | boolean {
  // int64 outputs arrive as BigInt, which JSON cannot hold; within 2^53 they are exact numbers.
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  // Floats print at float32 precision (6 significant digits), as everywhere results are rendered.
  if (typeof value === 'number' && !Number.isInteger(value)) return Number(formatFloat(value));
  return value;
}

function rowSlice(output: OutputData, row: number): (number | string | boolean)[] {
  const rows = output.dims[0] ?? 1;
  const perRow = rows === 0 ? 0 : output.data.length / rows;
  const values = new Array<number | string | boolean>(perRow);
  for (let i = 0; i < perRow; i++) values[i] = toJsonNumber(output.data[row * perRow + i] as number);
  return values;
}

function nest(values: unknown[], shape: readonly number[]): unknown {
  if (shape.length <= 1) return values;
  const step = values.length / (shape[0] ?? 1);
  const out: unknown[] = [];
  for (let i = 0; i < values.length; i += step) out.push(nest(values.slice(i, i + step), shape.slice(1)));
  return out;
}

/**
 * Turns output tensors into one JSON result line per row, as the manifest's `result` says.
 * `first`/`count` select rows of the (possibly dynamically batched) outputs; `ids` are echoed.
 */
export function formatResults(
  manifest: ModelManifest,
  outputs: ReadonlyMap<string, OutputData>,
  first: number,
  count: number,
  ids: readonly (RowId | null)[] | null,
): string[] {
  const lines = new Array<string>(count);
  const spec = manifest.result;
  const get = (name: string | undefined): OutputData => {
    const output = outputs.get(name ?? '');
    if (!output) throw new Error(`model produced no output named ${String(name)}`);
    return output;
  };
  if (spec.kind === 'classification') return formatClassifications(spec.labels ?? [], get(spec.output), first, count, ids);
  for (let i = 0; i < count; i++) {
    const row = first + i;
    let result: Record<string, unknown>;
    switch (spec.kind) {
      case 'regression': {
        const values = rowSlice(get(spec.output), row);
        const names = spec.names;
        if (names && names.length > 1) {
          result = { values: Object.fromEntries(names.map((n, k) => [n, values[k]])) };
        } else {
          result = { value: values[0] };
        }
        break;
      }
      case 'embedding':
        result = { embedding: rowSlice(get(spec.output), row) };
        break;
      case 'tensor': {
        const named: Record<string, unknown> = {};
        for (const name of spec.outputs ?? manifest.outputs.map((o) => o.name)) {
          const output = get(name);
          named[name] = nest(rowSlice(output, row), output.dims.slice(1));
        }
        result = { outputs: named };
        break;
      }
    }
    const id = ids?.[i];
    lines[i] = JSON.stringify(id === undefined || id === null ? result : { id, ...result });
  }
  return lines;
}

/** A float as JSON: finite numbers at float32 precision, anything else as a string (JSON has no NaN). */
export function jsonNumber(value: number): string {
  return Number.isFinite(value) ? formatFloat(value) : `"${String(value)}"`;
}

/**
 * Classification results written from a template rather than by JSON.stringify of an object
 * per row: on tabular models, formatting results is a large share of the worker's time.
 * Same output as `JSON.stringify({ id?, label, confidence, probabilities })`.
 */
function formatClassifications(
  labels: readonly string[],
  output: OutputData,
  first: number,
  count: number,
  ids: readonly (RowId | null)[] | null,
): string[] {
  const keys = labels.map((l) => JSON.stringify(l));
  const width = labels.length;
  const rows = output.dims[0] ?? 0;
  const perRow = rows === 0 ? 0 : output.data.length / rows;
  const data = output.data as ArrayLike<number>;
  const lines = new Array<string>(count);
  for (let i = 0; i < count; i++) {
    const base = (first + i) * perRow;
    let best = 0;
    let probabilities = '';
    for (let k = 0; k < width; k++) {
      const p = data[base + k] as number;
      if (p > (data[base + best] as number)) best = k;
      probabilities += `${k === 0 ? '' : ','}${keys[k] as string}:${jsonNumber(p)}`;
    }
    const id = ids?.[i];
    const head = id === undefined || id === null ? '{' : `{"id":${JSON.stringify(id)},`;
    lines[i] =
      `${head}"label":${keys[best] as string},"confidence":${jsonNumber(data[base + best] as number)},"probabilities":{${probabilities}}}`;
  }
  return lines;
}

/** The result line of a row that could not be run. */
export function formatRowError(error: RowError, id: RowId | undefined): string {
  return JSON.stringify(id === undefined ? { error } : { id, error });
}

/** Names of the outputs a manifest's result reads (the only ones fetched from the session). */
export function fetchedOutputs(manifest: ModelManifest): string[] {
  const spec = manifest.result;
  if (spec.kind === 'tensor') return spec.outputs ?? manifest.outputs.map((o) => o.name);
  return [spec.output ?? ''];
}
