import { randomBytes } from 'node:crypto';
import { open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';

/** The temporary name writeAtomically writes `name` under: `.<name>.<12 hex>.tmp`. */
const TEMPORARY = /^\.(.+)\.[0-9a-f]{12}\.tmp$/;

/**
 * Writes a file so that it appears whole or not at all: the content goes to a hidden temporary
 * file beside the target (`.<name>.<random>.tmp`, created exclusively, so never through a
 * symlink), is flushed to disk, and is renamed over the target.
 */
export async function writeAtomically(target: string, write: (handle: FileHandle) => Promise<void>): Promise<void> {
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, 'wx', 0o644);
  try {
    await write(handle);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await handle.close();
  try {
    await rename(temp, target);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/**
 * Removes the temporary files of a directory whose target `isMine` claims: those a process left
 * when it died while writing (a SIGKILL, or a grace period that ran out). Answers their names.
 */
export async function removeLeftovers(dir: string, isMine: (target: string) => boolean): Promise<string[]> {
  const leftovers = (await readdir(dir)).filter((name) => {
    const target = TEMPORARY.exec(name)?.[1];
    return target !== undefined && isMine(target);
  });
  await Promise.all(leftovers.map((name) => unlink(path.join(dir, name)).catch(() => undefined)));
  return leftovers;
}
