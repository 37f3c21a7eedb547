import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export interface SpooledBody {
  path: string;
  /** Removes the file and its directory; safe to call more than once. */
  remove(): Promise<void>;
}

/**
 * Writes a (metered) request body to a private temporary file, for formats that must be read out
 * of order (Parquet keeps its schema in a footer). The file is removed if the upload fails — a
 * client that goes away, a body over the limit — and otherwise by the caller, on every path.
 */
export async function spoolBody(body: Readable, dir: string): Promise<SpooledBody> {
  const folder = await mkdtemp(join(dir || tmpdir(), 'onnx-batch-upload-'));
  const path = join(folder, 'body');
  const remove = (): Promise<void> => rm(folder, { recursive: true, force: true });
  try {
    await pipeline(body, createWriteStream(path, { mode: 0o600 }));
  } catch (error) {
    await remove();
    throw error;
  }
  return { path, remove };
}
