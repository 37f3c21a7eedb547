import { execFile } from 'node:child_process';
import { realpathSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/env';

const run = promisify(execFile);

describe('the onnx-batch command after npm ci', () => {
  it('when npm has linked the workspace bin, then it points at the tracked bin file, not at built output', () => {
    const linked = realpathSync(path.join(ROOT, 'node_modules', '.bin', 'onnx-batch'));

    expect(linked).toBe(path.join(ROOT, 'cli', 'bin', 'onnx-batch.js'));
  });

  it('when `npx onnx-batch --help` runs in the checkout, then it prints the usage of every command', async () => {
    // `--no`: never fetch a package of that name from the registry; `--`: the options are the command's.
    const { stdout } = await run('npx', ['--no', '--', 'onnx-batch', '--help'], { cwd: ROOT, env: { PATH: process.env.PATH ?? '' } });

    expect(stdout).toMatch(/^Usage: onnx-batch/);
    for (const command of ['submit', 'wait', 'status', 'results', 'cancel', 'delete', 'models']) expect(stdout).toContain(command);
  });
});
