// Process plumbing for `npm run bench`: free ports, a private redis-server, the API and worker
// processes, and samplers of their memory and CPU. Everything started here is remembered by pid
// and stopped by `stopAll()` (also on SIGINT/SIGTERM and as a last resort on exit).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { redisAnswers } from './redis-probe.mjs';

/** Every child started by the bench: { name, child, exited }. */
const children = [];
const tempDirs = [];

/** A TCP port nothing listens on right now (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function track(name, child) {
  const entry = { name, child, exited: false, code: null, signal: null };
  child.once('exit', (code, signal) => {
    entry.exited = true;
    entry.code = code;
    entry.signal = signal;
  });
  children.push(entry);
  return entry;
}

/** Starts a private, in-memory redis-server on `port` (no RDB, no AOF), with `extraArgs` (e.g. cluster mode). */
export async function startRedis(port, extraArgs = []) {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('redis-server is not installed (apt-get install redis-server); the bench starts its own on a free port');
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-bench-redis-'));
  tempDirs.push(dir);
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...extraArgs];
  const child = spawn('redis-server', args, { stdio: 'ignore' });
  const entry = Object.assign(track('redis', child), { port });
  for (let i = 0; i < 100; i++) {
    if (entry.exited) throw new Error(`redis-server exited at start (code ${entry.code})`);
    if (await redisAnswers('127.0.0.1', port, 500)) return entry;
    await sleep(50);
  }
  throw new Error('redis-server did not answer within 5 s');
}

/** Starts `node [nodeArgs] <script>` with `env`, its output appended to `logFile`. */
export function startNode(name, script, env, logFile, nodeArgs = []) {
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [...nodeArgs, script], { env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return track(name, child);
}

/** Stops one started child by its pid: SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(entry, graceMs = 8000) {
  entry.stopping = true;
  if (entry.exited) return;
  entry.child.kill('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (!entry.exited && Date.now() < deadline) await sleep(50);
  if (!entry.exited) {
    entry.child.kill('SIGKILL');
    while (!entry.exited) await sleep(20);
  }
}

/** Stops every child still running (node processes first, redis last) and removes temp dirs. */
export async function stopAll() {
  const nodes = children.filter((c) => c.name !== 'redis');
  await Promise.all(nodes.map((c) => stop(c)));
  await Promise.all(children.filter((c) => c.name === 'redis').map((c) => stop(c)));
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Last resort when the bench exits without stopping its children (synchronous). */
export function killAllNow() {
  for (const c of children) if (!c.exited) c.child.kill('SIGKILL');
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** Children that exited although nobody asked them to stop (crashes), as "name (code)". */
export function unexpectedExits() {
  return children.filter((c) => c.exited && !c.stopping).map((c) => `${c.name} pid ${c.child.pid} (code ${c.code}, signal ${c.signal})`);
}

/** Resident set size of a process in bytes (VmRSS), or 0 once it is gone. */
export function rssBytes(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'latin1');
    const match = /VmRSS:\s+(\d+) kB/.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * A process and its children (an API running as API_PROCESSES processes is a cluster primary
 * with one child per process): their pids, read from each task's /proc/<pid>/task/<tid>/children.
 */
export function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readdirSync(`/proc/${pids[i]}/task`)) {
        const children = readFileSync(`/proc/${pids[i]}/task/${task}/children`, 'latin1').trim();
        if (children) pids.push(...children.split(/\s+/).map(Number));
      }
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU seconds (user + system) a process has used so far, or NaN once it is gone. */
export function cpuSeconds(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields after the command: state is index 0, so utime (14th) is 11 and stime 12.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** CPU seconds the whole machine has been busy (all cores, /proc/stat), for spotting other load. */
export function machineBusySeconds() {
  try {
    const fields = readFileSync('/proc/stat', 'latin1').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
    const [user, nice, system, , , irq, softirq, steal] = fields;
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/**
 * Samples every 100 ms the RSS of the API (every process of its tree) and the workers, and
 * Redis' used_memory; keeps peaks since the last `reset()`. `apiPids()` answers the API's pids
 * now (a cluster's children may be replaced).
 */
export class Sampler {
  constructor({ apiPids, workerPids, redis, intervalMs = 100 }) {
    this.apiPids = apiPids;
    this.workerPids = workerPids;
    this.redis = redis;
    this.intervalMs = intervalMs;
    this.redisBusy = false;
    this.timer = null;
    this.reset();
  }

  reset() {
    this.peaks = { apiRss: 0, workersRssSum: 0, workerRssMax: 0, redisUsedMemory: 0, samples: 0 };
  }

  start() {
    this.timer = setInterval(() => this.sample(), this.intervalMs);
    this.sample();
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  sample() {
    const p = this.peaks;
    p.samples++;
    p.apiRss = Math.max(
      p.apiRss,
      this.apiPids().reduce((sum, pid) => sum + rssBytes(pid), 0),
    );
    let sum = 0;
    for (const pid of this.workerPids) {
      const rss = rssBytes(pid);
      sum += rss;
      p.workerRssMax = Math.max(p.workerRssMax, rss);
    }
    p.workersRssSum = Math.max(p.workersRssSum, sum);
    if (this.redisBusy) return;
    this.redisBusy = true;
    usedMemory(this.redis).then(
      (bytes) => {
        this.redisBusy = false;
        this.peaks.redisUsedMemory = Math.max(this.peaks.redisUsedMemory, bytes);
      },
      () => {
        this.redisBusy = false;
      },
    );
  }

  snapshot() {
    this.sample();
    return { ...this.peaks };
  }
}

/** Redis INFO memory → used_memory in bytes. */
export async function usedMemory(redis) {
  const info = await redis.info('memory');
  const match = /used_memory:(\d+)/.exec(info);
  return match ? Number(match[1]) : NaN;
}

/** Deletes every key matching `pattern` (SCAN + UNLINK); answers how many. */
export async function deleteKeys(redis, pattern) {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

/** Redis INFO stats → total_reads_processed: read events, about one per client round trip (a pipeline is one). */
export async function redisReads(redis) {
  const info = await redis.info('stats');
  const match = /total_reads_processed:(\d+)/.exec(info);
  return match ? Number(match[1]) : NaN;
}

/** Redis INFO commandstats → { command: { calls, usec } }. */
export async function commandStats(redis) {
  const info = await redis.info('commandstats');
  const out = {};
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
    out[match[1]] = { calls: Number(match[2]), usec: Number(match[3]) };
  return out;
}

/** Commands Redis ran between two commandstats snapshots, per job, busiest first (INFO itself left out). */
export function commandsPerJob(before, after, jobs) {
  const rows = [];
  for (const [name, now] of Object.entries(after)) {
    if (name === 'info') continue;
    const calls = now.calls - (before[name]?.calls ?? 0);
    const usec = now.usec - (before[name]?.usec ?? 0);
    if (calls > 0) rows.push({ command: name, callsPerJob: calls / jobs, usecPerJob: usec / jobs });
  }
  rows.sort((a, b) => b.callsPerJob - a.callsPerJob);
  const total = rows.reduce((s, r) => s + r.callsPerJob, 0);
  const usec = rows.reduce((s, r) => s + r.usecPerJob, 0);
  return { callsPerJob: total, usecPerJob: usec, commands: rows };
}
