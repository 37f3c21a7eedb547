import { constants, type Stats } from 'node:fs';
import { lstat, open, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ProblemError } from '@onnx-batch/contracts';
import { invalidField } from './schedule';

/**
 * SCHEDULES_ROOT, the one directory schedules may read and write under. A directory a schedule
 * names is resolved against the root, then through every symlink (`realpath`), and must still be
 * the root or inside it: `..`, absolute paths and symlinks cannot lead out. The check is repeated
 * at every run (a symlink may have changed since), and input files are opened without following
 * a final symlink, so a file swapped for a link after listing is refused too.
 */
export class ScheduleRoot {
  private constructor(readonly real: string) {}

  /** Opens the root; fails start-up with a message naming SCHEDULES_ROOT when it is unusable. */
  static async open(root: string): Promise<ScheduleRoot> {
    let real: string;
    let info: Stats;
    try {
      real = await realpath(root);
      info = await stat(real);
    } catch (error) {
      throw new Error(`SCHEDULES_ROOT=${JSON.stringify(root)} cannot be used: ${(error as Error).message}`, { cause: error });
    }
    if (!info.isDirectory()) throw new Error(`SCHEDULES_ROOT=${JSON.stringify(root)} is not a directory`);
    return new ScheduleRoot(real);
  }

  /** Whether a real (symlink-free) path is the root or lies inside it. */
  contains(real: string): boolean {
    const relative = path.relative(this.real, real);
    return relative === '' || (!path.isAbsolute(relative) && relative !== '..' && !relative.startsWith(`..${path.sep}`));
  }

  /**
   * The real directory `dir` names: 400 naming `field` when it does not exist, is not a
   * directory, or resolves outside the root.
   */
  async directory(dir: string, field: 'input.dir' | 'output.dir'): Promise<string> {
    let real: string;
    try {
      real = await realpath(path.resolve(this.real, dir));
    } catch {
      throw invalidField(field, 'does not exist (directories are not created; make it under SCHEDULES_ROOT first)');
    }
    if (!this.contains(real)) throw invalidField(field, 'must be a directory inside SCHEDULES_ROOT (after resolving `..` and symlinks)');
    if (!(await stat(real)).isDirectory()) throw invalidField(field, 'is not a directory');
    return real;
  }

  /**
   * Opens a regular file of a (real) directory for reading. A symlink, a directory or a device
   * is refused with a ProblemError naming the file.
   */
  async openInput(realDir: string, name: string): Promise<FileHandle> {
    const file = path.join(realDir, name);
    const refused = (why: string): ProblemError => new ProblemError('OB_ERR_INVALID_REQUEST', `input file '${name}' ${why}`);
    if ((await lstat(file)).isSymbolicLink()) throw refused('is a symbolic link; schedules read regular files only');
    let handle: FileHandle;
    try {
      handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ELOOP') throw refused('is a symbolic link; schedules read regular files only');
      throw error;
    }
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw refused('is not a regular file');
    }
    return handle;
  }
}
