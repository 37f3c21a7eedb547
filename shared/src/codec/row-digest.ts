import { createHash } from 'node:crypto';
import { type ModelManifest, rowElements } from '@onnx-batch/contracts';
import type { DecodedChunk } from './chunk-codec';

/**
 * A digest per row of a decoded chunk: SHA-256 over the row's encoded values, input by input in
 * manifest order (numbers as the bytes they are stored in, strings as length-prefixed UTF-8), so
 * two rows that the model cannot tell apart have the same digest, whatever form the client sent
 * them in (object or array, base64 or nested array) and whatever their ids. base64url, 43 chars.
 */
export function rowDigests(manifest: ModelManifest, chunk: DecodedChunk): string[] {
  const hashes = Array.from({ length: chunk.rows }, () => createHash('sha256'));
  const length = Buffer.alloc(4);
  for (const input of manifest.inputs) {
    const data = chunk.inputs.get(input.name);
    if (data === undefined) throw new Error(`chunk has no data for input ${input.name}`);
    const perRow = rowElements(input.shape);
    if (Array.isArray(data)) {
      for (let row = 0; row < chunk.rows; row++) {
        for (let k = 0; k < perRow; k++) {
          const text = Buffer.from(data[row * perRow + k] ?? '', 'utf8');
          length.writeUInt32LE(text.length, 0);
          hashes[row]?.update(length).update(text);
        }
      }
      continue;
    }
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const rowBytes = perRow * data.BYTES_PER_ELEMENT;
    for (let row = 0; row < chunk.rows; row++) hashes[row]?.update(bytes.subarray(row * rowBytes, (row + 1) * rowBytes));
  }
  return hashes.map((h) => h.digest('base64url'));
}
