import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Redis, type RedisOptions } from 'ioredis';
import { keysWithPrefix } from './env';
import { freePort } from './private-redis';

/**
 * Redis topologies a test starts for itself: a Redis Cluster, a primary with a replica and three
 * Sentinels, a server that speaks TLS only. Every server is a `redis-server` child on loopback,
 * in a temporary directory, without persistence (`--save ""`), stopped by its pid.
 */

const run = promisify(execFile);

/** One redis-server (or Sentinel) process of a topology. */
export interface RedisProcess {
  readonly port: number;
  readonly pid: number;
  /** Stops it by pid: SIGTERM, or SIGKILL when `hard` (a crash). */
  stop(hard?: boolean): Promise<void>;
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A free port whose cluster bus port (port + 10000) is free too. */
async function freeClusterPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if ((await portIsFree(port)) && (await portIsFree(port + 10_000))) return port;
  }
  throw new Error('no free port pair for a cluster node');
}

async function answers(port: number, options: RedisOptions = {}): Promise<boolean> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...options });
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function until(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `redis-server <args>` and resolves once it answers PING on `port`. */
async function startProcess(port: number, args: string[], ping: RedisOptions = {}): Promise<RedisProcess> {
  const child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const handle: RedisProcess = {
    port,
    pid: child.pid ?? -1,
    async stop(hard = false) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(child.pid ?? -1, hard ? 'SIGKILL' : 'SIGTERM');
      await exited;
    },
  };
  try {
    await until(`redis-server on port ${port} answers`, () => answers(port, ping), 10_000);
  } catch (error) {
    await handle.stop(true);
    throw error;
  }
  return handle;
}

const COMMON = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'];

/**
 * What a topology of several servers keeps: a directory of its own, the servers started (in
 * order) and the clients opened; `destroy` disconnects the clients, stops the servers and removes
 * the directory.
 */
function scratch(kind: string): { dir: string; started: RedisProcess[]; clients: Redis[]; destroy: () => Promise<void> } {
  const dir = mkdtempSync(path.join(os.tmpdir(), `onnx-batch-test-${kind}-`));
  const started: RedisProcess[] = [];
  const clients: Redis[] = [];
  const destroy = async (): Promise<void> => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(started.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  return { dir, started, clients, destroy };
}

export interface RedisClusterHandle {
  /** `127.0.0.1:p1,127.0.0.1:p2,…`: REDIS_CLUSTER_NODES. */
  readonly nodes: string;
  readonly masters: readonly RedisProcess[];
  /** A plain connection to each master (closed by destroy). */
  clients(): Redis[];
  /** Keys under `prefix` on each master. */
  keysPerMaster(prefix: string): Promise<string[][]>;
  destroy(): Promise<void>;
}

/** A Redis Cluster of `masters` masters without replicas (redis-cli --cluster create). */
export async function startRedisCluster(masters = 3): Promise<RedisClusterHandle> {
  const { dir, started, clients, destroy } = scratch('cluster');
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freeClusterPort();
      const args = [
        '--port',
        String(port),
        ...COMMON,
        '--dir',
        dir,
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        `nodes-${port}.conf`,
        '--cluster-node-timeout',
        '3000',
      ];
      started.push(await startProcess(port, args));
    }
    const addresses = started.map((p) => `127.0.0.1:${p.port}`);
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-yes'], { timeout: 30_000 });
    for (const node of started) {
      const client = new Redis({ port: node.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      clients.push(client);
      await until(`cluster node ${node.port} reports state ok`, async () => /cluster_state:ok/.test(await client.cluster('INFO')));
    }
  } catch (error) {
    await destroy();
    throw error;
  }
  return {
    nodes: started.map((p) => `127.0.0.1:${p.port}`).join(','),
    masters: started,
    clients: () => clients,
    keysPerMaster: (prefix) => Promise.all(clients.map((client) => keysWithPrefix(client, prefix))),
    destroy,
  };
}

export interface SentinelSetHandle {
  readonly name: string;
  readonly primary: RedisProcess;
  readonly replica: RedisProcess;
  readonly sentinels: readonly RedisProcess[];
  /** `127.0.0.1:s1,…`: REDIS_SENTINELS. */
  readonly sentinelList: string;
  /** The port the Sentinels currently name as primary. */
  primaryPort(): Promise<number>;
  destroy(): Promise<void>;
}

/**
 * A primary, one replica and three Sentinels (quorum 2) that call the primary down after 1 s
 * without an answer, so a fail-over takes a few seconds.
 */
export async function startSentinelSet(name = 'onnxbatch'): Promise<SentinelSetHandle> {
  const { dir, started, clients, destroy } = scratch('sentinel');
  try {
    const primaryPort = await freePort();
    // No 5 s wait for more replicas before the first (diskless) sync.
    const primary = await startProcess(primaryPort, [
      '--port',
      String(primaryPort),
      ...COMMON,
      '--dir',
      dir,
      '--repl-diskless-sync-delay',
      '0',
    ]);
    started.push(primary);
    const replicaPort = await freePort();
    const replica = await startProcess(replicaPort, [
      '--port',
      String(replicaPort),
      ...COMMON,
      '--dir',
      dir,
      '--replicaof',
      '127.0.0.1',
      String(primaryPort),
      '--dbfilename',
      'replica.rdb',
    ]);
    started.push(replica);
    const primaryClient = new Redis({ port: primaryPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    clients.push(primaryClient);
    await until('the replica is in sync', async () => /slave0:.*state=online/.test(await primaryClient.info('replication')));
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const file = path.join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        file,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          '',
        ].join('\n'),
      );
      const sentinel = await startProcess(port, [file, '--sentinel']);
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    const sentinelClients = sentinels.map((sentinel) => new Redis({ port: sentinel.port, host: '127.0.0.1', maxRetriesPerRequest: 1 }));
    clients.push(...sentinelClients);
    // A fail-over needs each Sentinel to know the replica and the other Sentinels.
    await until(
      'every Sentinel knows the replica and the other Sentinels',
      async () => {
        for (const client of sentinelClients) {
          const replicas = (await client.call('SENTINEL', 'REPLICAS', name)) as unknown[];
          const peers = (await client.call('SENTINEL', 'SENTINELS', name)) as unknown[];
          if (replicas.length < 1 || peers.length < 2) return false;
        }
        return true;
      },
      30_000,
    );
    const primaryPortNow = async (): Promise<number> => {
      const [, port] = (await (sentinelClients[0] as Redis).call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)) as [string, string];
      return Number(port);
    };
    return {
      name,
      primary,
      replica,
      sentinels,
      sentinelList: sentinels.map((s) => `127.0.0.1:${s.port}`).join(','),
      primaryPort: primaryPortNow,
      destroy,
    };
  } catch (error) {
    await destroy();
    throw error;
  }
}

export interface TestCertificates {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** Writes a new server certificate (same CA, new key and serial) over certFile and keyFile. */
  renew(): Promise<void>;
  destroy(): void;
}

/** A self-signed CA and a server certificate it signed for 127.0.0.1 and localhost (openssl). */
export async function makeCertificates(): Promise<TestCertificates> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-test-tls-'));
  const file = (name: string): string => path.join(dir, name);
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args, { timeout: 30_000 });
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=onnx-batch test CA',
  );
  writeFileSync(
    file('server.ext'),
    [
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      'basicConstraints=CA:FALSE',
      'keyUsage=digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  const issue = async (): Promise<void> => {
    await openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      file('next.key'),
      '-out',
      file('server.csr'),
      '-subj',
      '/CN=localhost',
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      file('server.csr'),
      '-CA',
      file('ca.crt'),
      '-CAkey',
      file('ca.key'),
      '-set_serial',
      String(Date.now()),
      '-out',
      file('next.crt'),
      '-days',
      '2',
      '-extfile',
      file('server.ext'),
    );
    // Replaced whole (rename), as certificate managers do.
    renameSync(file('next.key'), file('server.key'));
    renameSync(file('next.crt'), file('server.crt'));
  };
  await issue();
  return {
    dir,
    caFile: file('ca.crt'),
    certFile: file('server.crt'),
    keyFile: file('server.key'),
    renew: issue,
    destroy: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A redis-server that speaks TLS only (no plain port), with the given certificate; clients need not present one. */
export async function startTlsRedis(certs: TestCertificates): Promise<RedisProcess & { url: string; destroy(): Promise<void> }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-test-tls-redis-'));
  const port = await freePort();
  const args = [
    '--port',
    '0',
    '--tls-port',
    String(port),
    '--tls-cert-file',
    certs.certFile,
    '--tls-key-file',
    certs.keyFile,
    '--tls-ca-cert-file',
    certs.caFile,
    '--tls-auth-clients',
    'no',
    ...COMMON,
    '--dir',
    dir,
  ];
  const server = await startProcess(port, args, { tls: { ca: readFileSync(certs.caFile) } });
  return {
    ...server,
    url: `rediss://127.0.0.1:${port}`,
    async destroy() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
