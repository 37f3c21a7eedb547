import { readFileSync } from 'node:fs';
import http from 'node:http';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { QueueName } from '@onnx-batch/shared';
import { keysWithPrefix } from './env';
import { spawnService, type Spawned } from './processes';

/** Helpers of the reliability tests: deterministic rows, streamed uploads, queue and process probes. */

/** A small seeded PRNG (mulberry32): the same seed gives the same sequence on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Row `i` of a deterministic iris batch, with id `r<i>`; values spread over the whole feature space. */
export function irisRow(i: number): { id: string; sepal_length: number; sepal_width: number; petal_length: number; petal_width: number } {
  return {
    id: `r${i}`,
    sepal_length: 4 + (i % 41) / 10,
    sepal_width: 2 + (i % 23) / 10,
    petal_length: 1 + (i % 59) / 10,
    petal_width: (i % 26) / 10,
  };
}

/** NDJSON lines of rows [from, to), each ending in a newline. */
export function irisNdjson(from: number, to: number): string {
  let text = '';
  for (let i = from; i < to; i++) text += `${JSON.stringify(irisRow(i))}\n`;
  return text;
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

function readAnswer(res: http.IncomingMessage): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.on('data', (d: Buffer) => parts.push(d));
    res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
    res.on('error', reject);
  });
}

/** Resolves when a request's socket can take more (or has closed). */
export function drained(req: http.ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      req.off('drain', done);
      req.off('close', done);
      resolve();
    };
    req.on('drain', done);
    req.on('close', done);
  });
}

/**
 * Streams `rows` deterministic iris rows as chunked NDJSON (a few thousand rows a write, waiting
 * for the socket to drain) and answers the API's reply.
 */
export async function uploadIrisNdjson(baseUrl: string, rows: number, query = 'model=iris&version=2'): Promise<Answer> {
  const url = new URL(`/v1/batch-predict?${query}`, baseUrl);
  const req = http.request(url, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, agent: false });
  const answered = new Promise<Answer>((resolve, reject) => {
    req.on('response', (res) => resolve(readAnswer(res)));
    req.on('error', reject);
  });
  const step = 5000;
  for (let from = 0; from < rows; from += step) {
    if (!req.write(irisNdjson(from, Math.min(rows, from + step)))) {
      await drained(req);
    }
  }
  req.end();
  return answered;
}

/** A raw request: answers whatever comes back (status 0 with the error text when the connection failed). */
export function rawRequest(
  baseUrl: string,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer,
): Promise<Answer> {
  return new Promise((resolve) => {
    const req = http.request(new URL(path, baseUrl), { method, headers, agent: false });
    req.on('response', (res) => {
      readAnswer(res).then(resolve, (error: Error) => resolve({ status: 0, headers: {}, text: error.message }));
    });
    req.on('error', (error) => resolve({ status: 0, headers: {}, text: error.message }));
    req.end(body);
  });
}

/** Results of a finished job as NDJSON lines, in the order the API streams them. */
export async function resultLines(baseUrl: string, jobId: string): Promise<string[]> {
  const response = await fetch(`${baseUrl}/v1/batch-result/${jobId}/results`, { headers: { accept: 'application/x-ndjson' } });
  if (response.status !== 200) throw new Error(`results of ${jobId}: HTTP ${response.status} ${await response.text()}`);
  const text = await response.text();
  return text.split('\n').filter((line) => line !== '');
}

/** Counts of every BullMQ state, per queue, under a prefix. */
export type QueueCounts = Record<QueueName, Record<string, number>>;

const STATES = ['active', 'wait', 'waiting', 'delayed', 'prioritized', 'waiting-children', 'completed', 'failed'] as const;

/** Where the queues are: a Redis URL, or the seed nodes of a Redis Cluster. */
export type RedisAt = string | { clusterNodes: string };

function connectTo(at: RedisAt): Redis | Cluster {
  if (typeof at === 'string') return new Redis(at, { maxRetriesPerRequest: null });
  const nodes = at.clusterNodes.split(',').map((node) => ({ host: node.split(':')[0] ?? '', port: Number(node.split(':')[1]) }));
  return new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: null } });
}

export async function queueCounts(redisAt: RedisAt, prefix: string): Promise<QueueCounts> {
  const connection = connectTo(redisAt);
  try {
    const out = {} as QueueCounts;
    for (const name of Object.values(QueueName)) {
      const queue = new Queue(name, { connection, prefix });
      try {
        out[name] = await queue.getJobCounts(...STATES);
      } finally {
        await queue.close();
      }
    }
    return out;
  } finally {
    await connection.quit().catch(() => connection.disconnect());
  }
}

/**
 * Queue counts once nothing is pending any more (or after `timeoutMs`): a batch's parent job runs
 * after its last chunk, and a chunk re-run after a crash may come after the job completed.
 */
export async function settledQueueCounts(redisAt: RedisAt, prefix: string, timeoutMs = 20_000): Promise<QueueCounts> {
  const deadline = Date.now() + timeoutMs;
  let counts = await queueCounts(redisAt, prefix);
  while (countOf(counts, 'active', 'wait', 'delayed', 'prioritized', 'waiting-children') > 0 && Date.now() < deadline) {
    await sleep(250);
    counts = await queueCounts(redisAt, prefix);
  }
  return counts;
}

/** Sum of one state over every queue. */
export function countOf(counts: QueueCounts, ...states: string[]): number {
  let n = 0;
  for (const perQueue of Object.values(counts)) for (const state of states) n += perQueue[state] ?? 0;
  return n;
}

/** Every event BullMQ wrote to a queue's events stream (`added`, `active`, `completed`, …). */
export async function queueEvents(redis: Redis, prefix: string, queue: QueueName): Promise<Record<string, string>[]> {
  const entries = (await redis.xrange(`${prefix}:${queue}:events`, '-', '+')) as [string, string[]][];
  return entries.map(([, fields]) => {
    const event: Record<string, string> = {};
    for (let i = 0; i + 1 < fields.length; i += 2) event[fields[i] as string] = fields[i + 1] as string;
    return event;
  });
}

/** Keys of job records, inputs and results under a prefix. */
export function jobKeys(redis: Redis, prefix: string): Promise<string[]> {
  return keysWithPrefix(redis, `${prefix}:job`);
}

/** Resident set size of a process, from /proc (bytes). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+)\s+kB/.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb) * 1024;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it answers true, or throws after `timeoutMs` naming `what`. */
export async function eventually(
  what: string,
  probe: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
  intervalMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(intervalMs);
  }
}

/** Polls a job's status document until it is finished (long polls of `wait` seconds). */
export async function finishedJob(baseUrl: string, jobId: string, timeoutMs = 120_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const response = await fetch(`${baseUrl}/v1/batch-result/${jobId}?wait=2`);
      const body = (await response.json()) as Record<string, unknown>;
      last = body;
      if (['completed', 'failed', 'cancelled'].includes(String(body.status))) return body;
    } catch (error) {
      last = String(error);
      await sleep(200);
    }
    if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish in ${timeoutMs} ms: ${JSON.stringify(last)}`);
  }
}

/** Failed BullMQ jobs of every queue under a prefix: id, reason, attempts and stall count (for failure messages). */
export async function failedJobs(redisUrl: string, prefix: string): Promise<string[]> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  try {
    const out: string[] = [];
    for (const name of Object.values(QueueName)) {
      const queue = new Queue(name, { connection, prefix });
      try {
        for (const job of await queue.getFailed(0, 50)) {
          const stalls = await connection.hget(`${prefix}:${name}:${job.id ?? ''}`, 'stc');
          out.push(`${name}/${job.id ?? '?'}: ${job.failedReason} (attempts ${job.attemptsMade}, stalls ${stalls ?? 0})`);
        }
      } finally {
        await queue.close();
      }
    }
    return out;
  } finally {
    await connection.quit().catch(() => connection.disconnect());
  }
}

/** Log lines of level warn or error from processes' output (but the open-API warning every test API logs). */
export function warnings(outputs: string[][]): string[] {
  return outputs
    .flat()
    .filter((line) => (/"level":"(warn|error)"/.test(line) || !line.startsWith('{')) && !line.includes('no API key is configured'));
}

/**
 * The api and worker processes one test file started. Each is registered the moment it is
 * spawned, so `stopAll` stops every one of them even when start-up failed half-way (a process
 * left running would keep jest from exiting). Processes are only ever signalled by their pid.
 */
export class ProcessGroup {
  readonly all: Spawned[] = [];

  private async start(
    kind: 'api' | 'worker' | 'scheduler',
    env: Record<string, string>,
    ready: string,
    script?: string,
  ): Promise<{ proc: Spawned; line: Record<string, unknown> }> {
    // The processes' own log lines are what tests wait on: `info` at least.
    const proc = spawnService(
      kind,
      { ...env, LOG_LEVEL: env.LOG_LEVEL === 'error' || env.LOG_LEVEL === undefined ? 'info' : env.LOG_LEVEL },
      script,
    );
    this.all.push(proc);
    try {
      return { proc, line: await proc.waitForLine((l) => l.message === ready, 30_000) };
    } catch (error) {
      await proc.stop('SIGKILL');
      throw error;
    }
  }

  /** Starts an API process (or a test entry point `script` of one); resolves once it listens. */
  async api(env: Record<string, string>, script?: string): Promise<{ proc: Spawned; url: string }> {
    const { proc, line } = await this.start('api', env, 'api listening', script);
    return { proc, url: String(line.url) };
  }

  /** Starts a scheduler process (it runs schedule ticks); resolves once it takes ticks. */
  async scheduler(env: Record<string, string>): Promise<Spawned> {
    return (await this.start('scheduler', env, 'scheduler started')).proc;
  }

  /** Starts a worker process; resolves once it takes work. */
  async worker(env: Record<string, string>): Promise<Spawned> {
    return (await this.start('worker', env, 'worker started')).proc;
  }

  async stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all(this.all.map((p) => p.stop(signal)));
  }
}
