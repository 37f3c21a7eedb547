/** Manifests shared by the unit tests: the real iris ones from models/, and small synthetic ones. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { ModelManifest } from '@onnx-batch/contracts';
import { ChunkEncoder, decodeChunk, RowValidator, type DecodedChunk } from '@onnx-batch/shared';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** A manifest read from `models/<name>/<version>/model.json` of the checkout. */
export function realManifest(name: string, version: string): ModelManifest {
  return JSON.parse(readFileSync(path.join(REPO_ROOT, 'models', name, version, 'model.json'), 'utf8')) as ModelManifest;
}

/** A 28×28 byte image (fashion-like) with base64 allowed; input is float32 [-1, 1, 28, 28]. */
export function imageManifest(): ModelManifest {
  return {
    name: 'images',
    version: '1',
    task: 'classification',
    features: [{ name: 'image', type: 'tensor', shape: [28, 28], minimum: 0, maximum: 255, base64: 'uint8' }],
    inputs: [{ name: 'image', dtype: 'float32', shape: [-1, 1, 28, 28], features: ['image'] }],
    outputs: [{ name: 'probabilities', dtype: 'float32', shape: [-1, 2] }],
    result: { kind: 'classification', output: 'probabilities', labels: ['no', 'yes'] },
  };
}

/** One string feature with a small maxLength; string graph input. */
export function textManifest(maxLength = 10): ModelManifest {
  return {
    name: 'text',
    version: '1',
    task: 'classification',
    features: [{ name: 'text', type: 'string', minLength: 0, maxLength }],
    inputs: [{ name: 'text', dtype: 'string', shape: [-1], features: ['text'] }],
    outputs: [{ name: 'probabilities', dtype: 'float32', shape: [-1, 2] }],
    result: { kind: 'classification', output: 'probabilities', labels: ['ham', 'spam'] },
  };
}

/** Two integer features into one int64 input; regression over two named targets. */
export function int64Manifest(): ModelManifest {
  return {
    name: 'counts',
    version: '1',
    task: 'regression',
    features: [
      { name: 'visits', type: 'integer', minimum: 0 },
      { name: 'clicks', type: 'integer', minimum: 0 },
    ],
    inputs: [{ name: 'counts', dtype: 'int64', shape: [-1, 2], features: ['visits', 'clicks'] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [-1, 2] }],
    result: { kind: 'regression', output: 'y', names: ['low', 'high'] },
  };
}

/** Three graph inputs: a string, a float32 pair and a 2×2 byte tensor (base64 allowed). */
export function multiInputManifest(): ModelManifest {
  return {
    name: 'multi',
    version: '1',
    task: 'tensor',
    features: [
      { name: 'title', type: 'string', maxLength: 100 },
      { name: 'x', type: 'number' },
      { name: 'y', type: 'number' },
      { name: 'patch', type: 'tensor', shape: [2, 2], minimum: 0, maximum: 255, base64: 'uint8' },
    ],
    inputs: [
      { name: 'title', dtype: 'string', shape: [-1], features: ['title'] },
      { name: 'xy', dtype: 'float32', shape: [-1, 2], features: ['x', 'y'] },
      { name: 'patch', dtype: 'float32', shape: [-1, 2, 2], features: ['patch'] },
    ],
    outputs: [{ name: 'embedding', dtype: 'float32', shape: [-1, 2, 3] }],
    result: { kind: 'tensor' },
  };
}

/** A float tensor feature (no base64) of shape [2, 3], float64 input. */
export function floatTensorManifest(): ModelManifest {
  return {
    name: 'grid',
    version: '1',
    task: 'tensor',
    features: [{ name: 'grid', type: 'tensor', shape: [2, 3] }],
    inputs: [{ name: 'grid', dtype: 'float64', shape: [-1, 2, 3], features: ['grid'] }],
    outputs: [{ name: 'out', dtype: 'float32', shape: [-1, 2] }],
    result: { kind: 'tensor' },
  };
}

/** A rows × cols nested array filled by `value(r, c)`. */
export function grid(rows: number, cols: number, value: (r: number, c: number) => number): number[][] {
  return Array.from({ length: rows }, (_, r) => Array.from({ length: cols }, (_, c) => value(r, c)));
}

/** Rows as the API stores them: validated, encoded, then decoded as a worker reads them. */
export function storedChunk(manifest: ModelManifest, rows: unknown[]): DecodedChunk {
  const validator = new RowValidator(manifest);
  const encoder = new ChunkEncoder(manifest, rows.length);
  for (const row of rows) {
    expect(validator.check(row)).toBeNull();
    expect(encoder.add(row)).toBeNull();
  }
  return decodeChunk(encoder.finish());
}
