import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
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

  it('when the reader of its output goes away (`onnx-batch --help | head -0`), then it exits 0 without an EPIPE trace', async () => {
    const child = spawn(process.execPath, [path.join(ROOT, 'cli', 'bin', 'onnx-batch.js'), '--help'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.destroy(); // the read end closes before the command writes a byte
    let stderr = '';
    child.stderr.on('data', (piece: Buffer) => (stderr += piece.toString()));
    const [code] = (await once(child, 'close')) as [number | null];

    expect(stderr).toBe('');
    expect(code).toBe(0);
  });
});
