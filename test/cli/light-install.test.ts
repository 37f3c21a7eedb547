import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT } from '../helpers/env';

const run = promisify(execFile);

/** The environment of the npm and node children: no npm_* variables of an enclosing `npm test` (its workspace, its prefix). */
function cleanEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')));
}

/** Every package name under a node_modules directory (scoped ones as `@scope/name`). */
function installedPackages(nodeModules: string): string[] {
  const names: string[] = [];
  for (const entry of readdirSync(nodeModules)) {
    if (entry.startsWith('.')) continue;
    if (entry.startsWith('@')) names.push(...readdirSync(path.join(nodeModules, entry)).map((name) => `${entry}/${name}`));
    else names.push(entry);
  }
  return names.sort();
}

describe('installing the CLI from its packed tarball, as a client machine would', () => {
  let dir: string;
  let app: string;
  let installed: string[];

  // `npm test` has built cli/dist and contracts/dist: the tarballs carry them (`files` of each package.json).
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'light-install-'));
    const packs = path.join(dir, 'packs');
    app = path.join(dir, 'app');
    mkdirSync(packs);
    mkdirSync(app);
    const env = cleanEnv();
    const { stdout } = await run('npm', ['pack', './contracts', './cli', '--pack-destination', packs, '--json', '--silent'], {
      cwd: ROOT,
      env,
      timeout: 30_000,
    });
    const tarballs = (JSON.parse(stdout) as { filename: string }[]).map((p) => path.join(packs, p.filename));
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'light-install-probe', version: '1.0.0', private: true }));
    // The two tarballs stand in for the registry's @onnx-batch packages; commander, cli-progress and undici come from the npm cache or
    // registry.
    await run('npm', ['install', ...tarballs, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      cwd: app,
      env,
      timeout: 45_000,
    });
    installed = installedPackages(path.join(app, 'node_modules'));
  }, 90_000);

  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it(
    'when the contracts and cli tarballs are installed into an empty directory, then neither ONNX Runtime nor BullMQ nor ' +
      'ioredis nor the server packages are',
    () => {
      expect(installed).toEqual(
        expect.arrayContaining(['@onnx-batch/cli', '@onnx-batch/contracts', 'commander', 'cli-progress', 'undici']),
      );
      expect(installed.filter((name) => /^(onnxruntime-|bullmq$|ioredis$|@onnx-batch\/(shared|api|worker|scheduler)$)/.test(name))).toEqual(
        [],
      );
      expect(existsSync(path.join(app, 'node_modules', 'onnxruntime-node'))).toBe(false);
    },
  );

  it('when `onnx-batch --help` runs there, then it prints the usage of every command', async () => {
    const { stdout } = await run(path.join(app, 'node_modules', '.bin', 'onnx-batch'), ['--help'], {
      cwd: app,
      env: cleanEnv(),
      timeout: 15_000,
    });

    expect(stdout).toMatch(/^Usage: onnx-batch/);
    for (const command of ['submit', 'wait', 'status', 'results', 'cancel', 'delete', 'models', 'rollout'])
      expect(stdout).toContain(command);
  });

  it('when a script there requires the typed client, then it loads with the contracts alone', async () => {
    const script = "const { OnnxBatchClient } = require('@onnx-batch/cli'); process.stdout.write(typeof OnnxBatchClient);";

    const { stdout } = await run(process.execPath, ['-e', script], { cwd: app, env: cleanEnv(), timeout: 15_000 });

    expect(stdout).toBe('function');
  });
});
