import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';

/**
 * Writes a file whole or not at all: into `<file>.partial-<pid>` beside it, renamed over `file`
 * only when `write` succeeded, so a reader (or the next cron run) never sees half a result file.
 */
export async function writeFileAtomically(file: string, write: (destination: Writable) => Promise<void>): Promise<void> {
  const partial = path.join(path.dirname(file), `.${path.basename(file)}.partial-${process.pid}`);
  const stream = createWriteStream(partial, { highWaterMark: 1024 * 1024 });
  try {
    await write(stream);
    await rename(partial, file);
  } catch (error) {
    // The file is opened asynchronously: let the stream close first, or it may appear after rm.
    if (!stream.closed) {
      const closed = once(stream, 'close');
      stream.destroy();
      await closed;
    }
    await rm(partial, { force: true });
    throw error;
  }
}

/**
 * A writable that forwards to `target` without ever ending it (for process.stdout, which a
 * pipeline must not close), passing its backpressure on.
 */
export function nonClosing(target: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer | string, _encoding, callback) {
      target.write(chunk, (error?: Error | null) => callback(error ?? null));
    },
  });
}
