import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';

export interface PrivateRedis {
  port: number;
  url: string;
  pid: number;
  /** Stops the server by pid (SIGTERM; SIGKILL when `hard`), keeping its directory for a restart. */
  stop(hard?: boolean): Promise<void>;
  /** Stops it and removes its directory. */
  destroy(): Promise<void>;
  /** Starts it again on the same port and directory (AOF data, if any, is reloaded). */
  restart(): Promise<void>;
  usedMemory(): Promise<number>;
  client(): Redis;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function waitForPing(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      client.disconnect();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer`);
}

/**
 * A redis-server of the test's own, on a free port; `aof` keeps data across restarts, `args`
 * adds (or overrides) server options (`['--maxmemory', '20mb']`).
 */
export async function startPrivateRedis(options: { aof?: boolean; args?: string[] } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-test-redis-'));
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
    '--appendonly',
    options.aof ? 'yes' : 'no',
    '--appendfsync',
    'always',
    '--maxmemory-policy',
    'noeviction',
    ...(options.args ?? []),
  ];
  let child: ChildProcess;
  const launch = async (): Promise<void> => {
    child = spawn('redis-server', args, { stdio: 'ignore' });
    await waitForPing(port);
  };
  await launch();
  const clients: Redis[] = [];
  const handle: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child.pid ?? -1;
    },
    async stop(hard = false) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      process.kill(child.pid ?? -1, hard ? 'SIGKILL' : 'SIGTERM');
      await exited;
    },
    restart: launch,
    async destroy() {
      for (const c of clients.splice(0)) c.disconnect();
      await handle.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async usedMemory() {
      const client = handle.client();
      const info = await client.info('memory');
      return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    },
    client() {
      const client = new Redis(handle.url, { maxRetriesPerRequest: 1 });
      clients.push(client);
      return client;
    },
  };
  return handle;
}
