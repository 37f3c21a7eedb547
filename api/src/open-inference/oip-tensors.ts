import { featureSize, ProblemError, type ModelManifest, type OutputDtype } from '@onnx-batch/contracts';
import type { ResultChunk } from '@onnx-batch/shared';

/**
 * Tensors of the Open Inference Protocol v2 (KServe / Triton) and the model's rows: graph inputs
 * become rows keyed by the manifest's features (then validated and queued like any row); stored
 * results become the graph outputs they were read from. The manifest is the one source of both.
 */

export type OipDatatype = 'BOOL' | 'UINT8' | 'INT32' | 'INT64' | 'FP32' | 'FP64' | 'BYTES';

export const OIP_DATATYPES: Record<OutputDtype, OipDatatype> = {
  bool: 'BOOL',
  uint8: 'UINT8',
  int32: 'INT32',
  int64: 'INT64',
  float32: 'FP32',
  float64: 'FP64',
  string: 'BYTES',
};

/** Bytes of one element in binary tensor data; BYTES elements are length-prefixed instead. */
const ELEMENT_BYTES: Record<Exclude<OipDatatype, 'BYTES'>, number> = { BOOL: 1, UINT8: 1, INT32: 4, INT64: 8, FP32: 4, FP64: 8 };

export interface TensorMetadata {
  name: string;
  datatype: OipDatatype;
  shape: number[];
}

export interface InferInputTensor {
  name: string;
  shape: number[];
  datatype: string;
  data?: unknown;
  parameters?: { binary_data_size?: number; [name: string]: unknown };
}

export interface OutputTensor {
  name: string;
  datatype: OipDatatype;
  shape: number[];
  /** Row-major elements: float32 values as stored. */
  values: Float32Array;
}

const invalid = (message: string): ProblemError => new ProblemError('OB_ERR_INVALID_REQUEST', message);

/** The graph inputs a request must send: the manifest's `inputs`, with OIP datatypes. */
export function inputMetadata(manifest: ModelManifest): TensorMetadata[] {
  return manifest.inputs.map((input) => ({ name: input.name, datatype: OIP_DATATYPES[input.dtype], shape: [...input.shape] }));
}

/**
 * The graph outputs an answer carries: the one output a classification or regression result reads,
 * as the worker stored it (float32, rows × labels or targets). Other graph outputs are not kept.
 */
export function outputMetadata(manifest: ModelManifest): TensorMetadata[] {
  const spec = manifest.result;
  // Only these two kinds are stored as a float32 tensor; the others (tensor, embedding) as per-row JSON lines.
  if (spec.kind !== 'classification' && spec.kind !== 'regression') return [];
  const output = manifest.outputs.find((o) => o.name === spec.output);
  return [{ name: spec.output ?? '', datatype: 'FP32', shape: output?.shape ? [...output.shape] : [-1, resultWidth(manifest)] }];
}

function resultWidth(manifest: ModelManifest): number {
  const spec = manifest.result;
  return spec.kind === 'classification' ? (spec.labels ?? []).length : (spec.names ?? ['value']).length;
}

/**
 * Flattens `data` (flat or nested, row-major) into at most `limit` + 1 elements: enough to tell a
 * wrong count. Nesting deeper than the shape's rank is refused (it would only serve to exhaust the stack).
 */
function flatten(data: unknown, limit: number, rank: number, name: string): unknown[] {
  const out: unknown[] = [];
  const walk = (value: unknown, depth: number): void => {
    if (out.length > limit) return;
    if (!Array.isArray(value)) {
      out.push(value);
      return;
    }
    if (depth >= rank) throw invalid(`input '${name}': data is nested deeper than its shape's ${rank} dimensions`);
    for (const item of value as unknown[]) walk(item, depth + 1);
  };
  walk(data, 0);
  return out;
}

function checkJsonElement(datatype: OipDatatype, value: unknown, where: string): number | string {
  if (datatype === 'BYTES') {
    if (typeof value !== 'string') throw invalid(`${where}: BYTES data must be strings`);
    return value;
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw invalid(`${where}: ${datatype} data must be finite numbers`);
  if (datatype !== 'FP32' && datatype !== 'FP64' && !Number.isInteger(value)) throw invalid(`${where}: ${datatype} data must be integers`);
  if (datatype === 'UINT8' && (value < 0 || value > 255)) throw invalid(`${where}: UINT8 data must be 0–255`);
  return value;
}

/** The elements of binary tensor data, checked against the declared count and size. */
function decodeBinary(datatype: OipDatatype, bytes: Buffer, elements: number, name: string): (number | string)[] {
  if (datatype === 'BYTES') {
    const values: string[] = [];
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    let at = 0;
    while (at < bytes.length) {
      if (at + 4 > bytes.length) throw invalid(`input '${name}': binary BYTES element ${values.length} is cut inside its length prefix`);
      const length = bytes.readUInt32LE(at);
      if (at + 4 + length > bytes.length)
        throw invalid(`input '${name}': binary BYTES element ${values.length} is longer than the data left`);
      if (values.length === elements) throw invalid(`input '${name}': binary data holds more than the ${elements} elements of its shape`);
      try {
        values.push(utf8.decode(bytes.subarray(at + 4, at + 4 + length)));
      } catch {
        throw invalid(`input '${name}': binary BYTES element ${values.length} is not valid UTF-8 text`);
      }
      at += 4 + length;
    }
    if (values.length !== elements) throw invalid(`input '${name}': binary data holds ${values.length} elements, its shape ${elements}`);
    return values;
  }
  const size = ELEMENT_BYTES[datatype];
  if (bytes.length !== elements * size) {
    throw invalid(`input '${name}': binary_data_size is ${bytes.length} bytes; shape and ${datatype} need ${elements * size}`);
  }
  // A copy: the body's slice need not be aligned for a typed array.
  const aligned = new Uint8Array(bytes).buffer;
  switch (datatype) {
    case 'FP32':
      return finite(Array.from(new Float32Array(aligned)), name);
    case 'FP64':
      return finite(Array.from(new Float64Array(aligned)), name);
    case 'INT32':
      return Array.from(new Int32Array(aligned));
    case 'UINT8':
    case 'BOOL':
      return Array.from(new Uint8Array(aligned));
    case 'INT64':
      return Array.from(new BigInt64Array(aligned), (v) => {
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER))
          throw invalid(`input '${name}': INT64 value ${v} is beyond what a row can carry (±2^53)`);
        return Number(v);
      });
  }
}

/** JSON cannot send NaN or infinities; binary data could, and rows take neither. */
function finite(values: number[], name: string): number[] {
  const at = values.findIndex((v) => !Number.isFinite(v));
  if (at >= 0) throw invalid(`input '${name}': element ${at} is ${values[at]}; rows take finite numbers only`);
  return values;
}

/** `values` (row-major) shaped as nested arrays of `shape`. */
function nest(values: readonly unknown[], shape: readonly number[]): unknown {
  if (shape.length === 0) return values[0];
  const [first, ...rest] = shape as [number, ...number[]];
  const step = values.length / first;
  return Array.from({ length: first }, (_, i) => nest(values.slice(i * step, (i + 1) * step), rest));
}

/**
 * The rows the input tensors hold: each graph input's tensor is split along its first dimension,
 * and each row's slice is cut into the input's features, in order. Nothing is validated here
 * that the row validator checks (bounds, lengths); this checks only what makes rows of tensors:
 * names, datatypes, shapes, element counts and binary sizes. `binary` holds each input's binary
 * part, by input index. Throws 400 (413 past `maxRows`) naming the input.
 */
export function tensorsToRows(
  manifest: ModelManifest,
  inputs: readonly InferInputTensor[],
  binary: ReadonlyMap<number, Buffer>,
  maxRows: number,
): Record<string, unknown>[] {
  const expected = manifest.inputs.map((i) => i.name).join(', ');
  const seen = new Set<string>();
  for (const input of inputs) {
    if (!manifest.inputs.some((i) => i.name === input.name))
      throw invalid(`unexpected inference input '${input.name}' for model '${manifest.name}'; its inputs are: ${expected}`);
    if (seen.has(input.name)) throw invalid(`input '${input.name}' is sent twice`);
    seen.add(input.name);
  }
  const missing = manifest.inputs.filter((i) => !seen.has(i.name)).map((i) => i.name);
  if (missing.length > 0) throw invalid(`model '${manifest.name}' expects input(s) ${missing.join(', ')}`);

  const features = new Map(manifest.features.map((f) => [f.name, f]));
  let rowCount: number | null = null;
  let rows: Record<string, unknown>[] = [];
  inputs.forEach((input, index) => {
    const graph = manifest.inputs.find((i) => i.name === input.name);
    if (!graph) return;
    const datatype = OIP_DATATYPES[graph.dtype];
    if (input.datatype !== datatype)
      throw invalid(`input '${input.name}': datatype ${input.datatype.slice(0, 20)}; the model takes ${datatype}`);
    const { shape } = input;
    if (shape.length !== graph.shape.length || shape.some((d, k) => d < 0 || (graph.shape[k] !== -1 && d !== graph.shape[k])))
      throw invalid(`input '${input.name}': shape [${shape.join(',')}] does not match the model's [${graph.shape.join(',')}]`);
    const count = shape[0] ?? 0;
    if (count > maxRows)
      throw new ProblemError('OB_ERR_TOO_MANY_ROWS', `input '${input.name}' holds ${count} rows; inference takes at most ${maxRows}`);
    if (count === 0) throw invalid(`input '${input.name}': shape [${shape.join(',')}] holds no rows`);
    if (rowCount !== null && count !== rowCount)
      throw invalid(`input '${input.name}' holds ${count} rows, another input ${rowCount}: every input must hold the same rows`);
    rowCount = count;
    const cut = graph.features.map((name) => {
      const feature = features.get(name);
      if (!feature) throw new Error(`manifest input '${graph.name}' names unknown feature '${name}'`);
      return { feature, size: featureSize(feature) };
    });
    const perRow = cut.reduce((n, c) => n + c.size, 0);
    // The fixed dimensions match the manifest's, so this only differs for a manifest whose dynamic ones are per row.
    const perRowOfShape = shape.slice(1).reduce((a, b) => a * b, 1);
    if (perRowOfShape !== perRow)
      throw invalid(`input '${input.name}': shape [${shape.join(',')}] gives ${perRowOfShape} elements a row; the model takes ${perRow}`);
    const elements = count * perRow;
    const part = binary.get(index);
    let values: unknown[];
    if (part !== undefined) {
      if (input.data !== undefined) throw invalid(`input '${input.name}' has both data and binary_data_size`);
      values = decodeBinary(datatype, part, elements, input.name);
    } else {
      if (input.data === undefined) throw invalid(`input '${input.name}' has neither data nor binary_data_size`);
      values = flatten(input.data, elements, shape.length, input.name);
      if (values.length !== elements) {
        const held = values.length > elements ? `more than ${elements}` : String(values.length);
        throw invalid(`input '${input.name}': data holds ${held} elements; shape [${shape.join(',')}] needs ${elements}`);
      }
      values = values.map((v, k) => checkJsonElement(datatype, v, `input '${input.name}' element ${k}`));
    }
    if (rows.length === 0) rows = Array.from({ length: count }, () => ({}));
    rows.forEach((row, r) => {
      let at = r * perRow;
      for (const { feature, size } of cut) {
        row[feature.name] = feature.type === 'tensor' ? nest(values.slice(at, at + size), feature.shape ?? []) : values[at];
        at += size;
      }
    });
  });
  return rows;
}

/** The stored results of a finished job as its output tensor; a row that failed makes the answer a 500 naming it. */
export function chunksToOutput(manifest: ModelManifest, chunks: readonly (ResultChunk | null)[], rows: number): OutputTensor {
  const [meta] = outputMetadata(manifest);
  if (!meta) throw new Error(`model '${manifest.name}' has no output the protocol can carry`);
  const width = resultWidth(manifest);
  const values = new Float32Array(rows * width);
  let at = 0;
  for (const chunk of chunks) {
    if (!chunk) throw new ProblemError('OB_ERR_INFERENCE_FAILED', 'the results of the job expired before they were read');
    const [row, error] = [...chunk.errors][0] ?? [];
    if (error !== undefined) throw new ProblemError('OB_ERR_INFERENCE_FAILED', `row ${at + (row ?? 0)}: ${error.message}`);
    values.set(chunk.values, at * width);
    at += chunk.rows;
  }
  if (at !== rows) throw new ProblemError('OB_ERR_INFERENCE_FAILED', `the job has results for ${at} of ${rows} rows`);
  return { name: meta.name, datatype: 'FP32', shape: meta.shape.length === 1 ? [rows] : [rows, width], values };
}
