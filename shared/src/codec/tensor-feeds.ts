import { type InputDtype, type ModelManifest, rowElements } from '@onnx-batch/contracts';
import type { DecodedChunk } from './chunk-codec';

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | string[];

/** A graph input ready to wrap in an ONNX Runtime tensor (kept free of ORT types). */
export interface FeedData {
  dtype: InputDtype;
  data: TensorData;
  dims: number[];
}

function allocate(dtype: InputDtype, length: number): TensorData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(length);
    case 'float64':
      return new Float64Array(length);
    case 'int32':
      return new Int32Array(length);
    case 'int64':
      return new BigInt64Array(length);
    case 'uint8':
      return new Uint8Array(length);
    case 'string':
      return new Array<string>(length);
  }
}

/**
 * Builds the graph inputs for one `run()` over one or more decoded chunks (dynamic batching
 * puts several small chunks in one call), converting from storage form to the graph's dtype.
 */
export function buildFeeds(manifest: ModelManifest, chunks: readonly DecodedChunk[]): Map<string, FeedData> {
  const rows = chunks.reduce((n, c) => n + c.rows, 0);
  const feeds = new Map<string, FeedData>();
  for (const input of manifest.inputs) {
    const perRow = rowElements(input.shape);
    const dims = [rows, ...input.shape.slice(1)];
    const only = chunks.length === 1 ? chunks[0]?.inputs.get(input.name) : undefined;
    // A lone chunk stored in the graph's own element type goes in as it is: no copy (bytes of images, most often).
    if (only !== undefined && !Array.isArray(only) && sameElementType(only, input.dtype) && only.length === rows * perRow) {
      feeds.set(input.name, { dtype: input.dtype, data: only, dims });
      continue;
    }
    const data = allocate(input.dtype, rows * perRow);
    let offset = 0;
    for (const chunk of chunks) {
      const source = chunk.inputs.get(input.name);
      if (source === undefined) throw new Error(`chunk has no data for input ${input.name}`);
      const length = chunk.rows * perRow;
      if (source.length !== length) throw new Error(`input ${input.name}: expected ${length} values, chunk holds ${source.length}`);
      if (data instanceof BigInt64Array) {
        for (let i = 0; i < length; i++) data[offset + i] = BigInt(Math.trunc(Number(source[i])));
      } else if (Array.isArray(data)) {
        for (let i = 0; i < length; i++) data[offset + i] = String(source[i]);
      } else {
        data.set(source as ArrayLike<number>, offset);
      }
      offset += length;
    }
    feeds.set(input.name, { dtype: input.dtype, data, dims });
  }
  return feeds;
}

/** Rows [start, start + count) of a decoded chunk, sharing its memory (for per-row fallback). */
export function sliceChunk(manifest: ModelManifest, chunk: DecodedChunk, start: number, count: number): DecodedChunk {
  const inputs: DecodedChunk['inputs'] = new Map();
  for (const input of manifest.inputs) {
    const perRow = rowElements(input.shape);
    const source = chunk.inputs.get(input.name);
    if (source === undefined) continue;
    inputs.set(
      input.name,
      Array.isArray(source)
        ? source.slice(start * perRow, (start + count) * perRow)
        : source.subarray(start * perRow, (start + count) * perRow),
    );
  }
  const passthrough = chunk.passthrough
    ? { names: chunk.passthrough.names, columns: chunk.passthrough.columns.map((c) => c.slice(start, start + count)) }
    : null;
  return { rows: count, inputs, ids: chunk.ids ? chunk.ids.slice(start, start + count) : null, passthrough };
}

function sameElementType(data: Float32Array | Float64Array | Int32Array | Uint8Array, dtype: InputDtype): boolean {
  return (
    (dtype === 'uint8' && data instanceof Uint8Array) ||
    (dtype === 'float32' && data instanceof Float32Array) ||
    (dtype === 'float64' && data instanceof Float64Array) ||
    (dtype === 'int32' && data instanceof Int32Array)
  );
}
