import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './env';

export interface Spawned {
  child: ChildProcess;
  pid: number;
  output: string[];
  /** The JSON log lines so far that match (a cluster's primary carries its children's lines too). */
  lines(match: (line: Record<string, unknown>) => boolean): Record<string, unknown>[];
  /** Resolves with the first log line matching. */
  waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Spawns a real service process (`api`, `worker` or `scheduler`) from the built code (or `script`, a test entry point), with its env. */
export function spawnService(
  kind: 'api' | 'worker' | 'scheduler',
  env: Record<string, string>,
  script = path.join(ROOT, kind, 'dist', 'main.js'),
): Spawned {
  const child = spawn(process.execPath, [script], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return follow(kind, child);
}

/** Runs `npm run <script>` in the repository, as a user would, with its env (the service's lines come through npm). */
export function spawnNpmScript(script: string, env: Record<string, string>): Spawned {
  const child = spawn('npm', ['run', '--silent', script], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return follow(`npm run ${script}`, child);
}

/** Collects a spawned process's output and JSON log lines. */
function follow(kind: string, child: ChildProcess): Spawned {
  const output: string[] = [];
  const parsedLines: Record<string, unknown>[] = [];
  const listeners = new Set<(line: Record<string, unknown>) => void>();
  let buffered = '';
  const onData = (data: Buffer): void => {
    buffered += data.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      output.push(line);
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue;
      }
      parsedLines.push(parsed);
      for (const listener of listeners) listener(parsed);
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', (data: Buffer) => output.push(data.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    pid: child.pid ?? -1,
    output,
    lines: (match) => parsedLines.filter(match),
    waitForLine(match, timeoutMs = 20_000) {
      const seen = parsedLines.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`${kind} did not log the expected line in ${timeoutMs} ms; output:\n${output.join('\n')}`));
        }, timeoutMs);
        const listener = (line: Record<string, unknown>): void => {
          if (!match(line)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(line);
        };
        listeners.add(listener);
        void exited.then((code) => {
          if (!listeners.has(listener)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          reject(new Error(`${kind} exited with ${code}; output:\n${output.join('\n')}`));
        });
      });
    },
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      process.kill(child.pid ?? -1, signal);
      return exited;
    },
  };
}

/** Starts an API process and resolves with its base URL once it listens. */
export async function spawnApi(env: Record<string, string>): Promise<{ proc: Spawned; url: string }> {
  const proc = spawnService('api', { ...env, LOG_LEVEL: env.LOG_LEVEL === 'error' ? 'info' : (env.LOG_LEVEL ?? 'info') });
  const line = await proc.waitForLine((l) => l.message === 'api listening');
  return { proc, url: String(line.url) };
}

export async function spawnWorker(env: Record<string, string>): Promise<Spawned> {
  const proc = spawnService('worker', { ...env, LOG_LEVEL: env.LOG_LEVEL === 'error' ? 'info' : (env.LOG_LEVEL ?? 'info') });
  await proc.waitForLine((l) => l.message === 'worker started');
  return proc;
}

/** Starts a scheduler process (it runs schedule ticks) and resolves once it takes ticks, or idles without SCHEDULES_ROOT. */
export async function spawnScheduler(env: Record<string, string>): Promise<Spawned> {
  const proc = spawnService('scheduler', { ...env, LOG_LEVEL: env.LOG_LEVEL === 'error' ? 'info' : (env.LOG_LEVEL ?? 'info') });
  await proc.waitForLine((l) => l.message === 'scheduler started');
  return proc;
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
