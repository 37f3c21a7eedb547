import { spawn } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { runCli as runCliHere, type CliIo } from '@onnx-batch/cli';
import { ROOT } from './env';

/** The built `onnx-batch` entry point (what `npm install` links as the bin). */
export const CLI = path.join(ROOT, 'cli', 'dist', 'main.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  /** The whole environment of the child besides PATH: nothing leaks in from the test runner's. */
  env?: Record<string, string>;
  cwd?: string;
  /** Written to the child's stdin (which is then closed). */
  input?: string;
  timeoutMs?: number;
}

/** Runs `node cli/dist/main.js ...args` as a child process (stdio piped: not a TTY) and resolves when it exits. */
export function runCli(args: string[], options: CliRunOptions = {}): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { PATH: process.env.PATH ?? '', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`onnx-batch ${args.join(' ')} did not exit in ${options.timeoutMs ?? 60_000} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`),
      );
    }, options.timeoutMs ?? 60_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A loopback port nothing listens on (it was free a moment ago). */
export function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** The CLI in this process (`runCli` of @onnx-batch/cli), on buffers instead of the process's streams. */
export async function cliInProcess(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const io: CliIo = { stdin: Readable.from([]), stdout, stderr };
  const code = await runCliHere(['node', 'onnx-batch', ...args], io);
  return { code, stdout: out, stderr: err };
}
