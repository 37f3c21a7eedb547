// `npm run bench`: end-to-end throughput and latency of onnx-batch against raw in-process ONNX
// Runtime on the same model and rows, and against a null service (the same contract answered
// instantly from memory) through the same client, on this machine. Starts its own redis-server,
// API, worker and null-service processes on free ports (127.0.0.1 only), runs bounded workloads,
// prints tables and writes everything to bench-results/bench-<timestamp>.json. See docs/benchmarks.md.
//
// Knobs (environment): WORKERS (worker processes, default = CPUs), API_PROCESSES (API processes
// sharing the port, default 1 here), BENCH_ONLY (comma list of raw,mem,null,W1,W1poll,W2,W2json,
// W2arrow,W2parquet,W3,W3poll,W5,W4,W4arrow,W4parquet,W4x4,http,W6,drift to run a subset; `null` adds the null-service runs of the selected
// workloads that have one), BENCH_CPU_PROF (directory: the API and workers run with --cpu-prof
// and write .cpuprofile files there when they stop). Other onnx-batch variables (CHUNK_SIZE,
// WORKER_CONCURRENCY, MAX_BATCH_ROWS, …) pass through to the processes.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { benchCache, printCache } from './bench-cache.mjs';
import { benchDrift, printDrift } from './bench-drift.mjs';
import { FixedSizeBinary, Table, makeData, makeVector, tableFromArrays, tableFromIPC, tableToIPC } from 'apache-arrow';
import { parquetMetadata } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { BenchError, Client, binarySubmit, jsonSubmit, ndjsonSubmit, runJobs, runRequests, runJob, waitReady } from './bench-client.mjs';
import {
  commandsPerJob,
  commandStats,
  cpuSeconds,
  deleteKeys,
  machineBusySeconds,
  freePort,
  killAllNow,
  processTree,
  redisReads,
  Sampler,
  startNode,
  startRedis,
  stop,
  stopAll,
  unexpectedExits,
  usedMemory,
} from './bench-procs.mjs';
import { goldenInputs, loadDefaultModel, measureRaw, storedBytesPerRow } from './bench-raw.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const requireFrom = path.join(root, 'package.json');
const requireFromRoot = createRequire(requireFrom);
const Redis = requireFromRoot('ioredis');
const { Queue } = requireFromRoot('bullmq');

const CPUS = os.availableParallelism();
const WORKERS = Number(process.env.WORKERS || CPUS);
const PREFIX = process.env.REDIS_PREFIX || 'onnx-batch';
const { CONFIG_VARIABLES } = requireFromRoot('./shared/dist/config.js');
const DEFAULT_CHUNK_SIZE = Number(process.env.CHUNK_SIZE || CONFIG_VARIABLES.CHUNK_SIZE.default);
// The limiter still runs by default (its leases from Redis are part of the cost) but never refuses.
const RATE_LIMIT = process.env.RATE_LIMIT_PER_MINUTE || '10000000';
// One API process unless asked: the CPU columns then read as one process's cost.
const API_PROCESSES = process.env.API_PROCESSES || '1';
const POLL_MS = 5;
const ONLY = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim())) : null;
const wanted = (id) => !ONLY || ONLY.has(id);
const FASHION_ROWS = 20_000;
const FASHION_JOB_ROWS = 2000;
const FASHION_IMAGES = '/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz';

const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const resultsDir = path.join(root, 'bench-results');
const logBase = path.join(resultsDir, `bench-${stamp}`);
const say = (text) => process.stdout.write(`${text}\n`);

let redis = null;
/** Every sampler started, stopped on shutdown. */
const samplers = new Set();
let client = null;
let shuttingDown = false;

async function shutdown(code) {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const sampler of samplers) sampler.stop();
  client?.close();
  if (redis) await redis.quit().catch(() => redis.disconnect());
  await stopAll();
  process.exit(code);
}
process.on('SIGINT', () => {
  say('bench: interrupted; stopping everything it started');
  void shutdown(130);
});
process.on('SIGTERM', () => void shutdown(143));
process.on('exit', killAllNow);

// ---------------------------------------------------------------------------------------------
// Data: the models' rows, as arrays of feature values in manifest order.

function irisRows(model) {
  const names = model.manifest.features.map((f) => f.name);
  return goldenInputs(model).map((row) => (Array.isArray(row) ? row : names.map((n) => row[n])));
}

/** 28×28 images as base64 strings: Fashion-MNIST t10k (10 000 images) when installed, else random bytes. */
function fashionImages(count) {
  if (existsSync(FASHION_IMAGES)) {
    const idx = gunzipSync(readFileSync(FASHION_IMAGES));
    if (idx.readUInt32BE(0) !== 2051) throw new Error(`${FASHION_IMAGES} is not an idx3 image file`);
    const n = Math.min(count, idx.readUInt32BE(4));
    const images = Array.from({ length: n }, (_, i) => idx.toString('base64', 16 + i * 784, 16 + (i + 1) * 784));
    return { images, source: `${FASHION_IMAGES} (${n} distinct images)` };
  }
  const bytes = Buffer.alloc(count * 784);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (Math.random() * 256) | 0;
  return { images: Array.from({ length: count }, (_, i) => bytes.toString('base64', i * 784, (i + 1) * 784)), source: 'random bytes' };
}

const ndjsonLines = (rows, count) => {
  const lines = rows.map((r) => `${JSON.stringify(r)}\n`);
  let out = '';
  for (let i = 0; i < count; i++) out += lines[i % lines.length];
  return out;
};
const ARROW = 'application/vnd.apache.arrow.stream';
const PARQUET = 'application/vnd.apache.parquet';
const ARROW_RESULTS = { type: ARROW, countRows: (body) => tableFromIPC(body).numRows };
const PARQUET_RESULTS = {
  type: PARQUET,
  countRows: (body) => Number(parquetMetadata(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)).num_rows),
};

/** Rows as float32 columns named by the manifest's features, as a data team's table holds them. */
function irisColumns(model, rows, count) {
  return Object.fromEntries(
    model.manifest.features.map((f, k) => [f.name, Float32Array.from({ length: count }, (_, i) => rows[i % rows.length][k])]),
  );
}

/** An IPC stream of record batches of `batchRows` rows (as pyarrow writes a table of several batches). */
function arrowStream(table, batchRows = 65_536) {
  const batches = [];
  for (let start = 0; start < table.numRows; start += batchRows) batches.push(...table.slice(start, start + batchRows).batches);
  return Buffer.from(tableToIPC(new Table(batches), 'stream'));
}

/** A Parquet file with row groups of `groupRows` rows. */
function parquetFile(columnData, groupRows = 65_536) {
  return Buffer.from(parquetWriteBuffer({ columnData, rowGroupSize: groupRows }));
}

/** `count` images (base64 strings) as one flat byte array. */
function imageBytes(images, count, offset = 0) {
  const out = Buffer.alloc(count * 784);
  for (let i = 0; i < count; i++) out.write(images[(offset + i) % images.length], i * 784, 'base64');
  return out;
}

const cycle = (rows, count, offset = 0) => Array.from({ length: count }, (_, i) => rows[(offset + i) % rows.length]);

// ---------------------------------------------------------------------------------------------
// Processes.

function serviceEnv(extra) {
  const env = {
    ...process.env,
    REDIS_URL: redisUrl,
    REDIS_PREFIX: PREFIX,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    INTRA_OP_THREADS: '1',
    RATE_LIMIT_PER_MINUTE: RATE_LIMIT,
    SHUTDOWN_GRACE_MS: '5000',
    API_PROCESSES,
    ...extra,
  };
  return env;
}

/** Node flags of the service processes: --cpu-prof when BENCH_CPU_PROF names a directory. */
const NODE_ARGS = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF)}`] : [];

/** waitReady with this run's log files named in its errors. */
const ready = (client, what) => waitReady(client, what, { logs: `${logBase}.*.log` });

/**
 * Replaces every worker process of `workers` (the live array, changed in place) by one started
 * with `extraEnv`, named `worker-<tag>-<n>`; the sampler follows them. Answers the new entries once they are registered.
 */
async function restartWorkers(workers, sampler, tag, extraEnv) {
  const count = workers.length;
  await Promise.all(workers.splice(0).map((w) => stop(w)));
  for (let i = 0; i < count; i++) {
    const name = `worker-${tag}-${i + 1}`;
    workers.push(startNode(name, path.join(root, 'worker/dist/main.js'), serviceEnv(extraEnv), `${logBase}.${name}.log`, NODE_ARGS));
  }
  sampler.workerPids = workers.map((w) => w.child.pid);
  await waitForWorkers(count);
  return workers;
}

async function waitForWorkers(count, timeoutMs = 20_000) {
  const queue = new Queue('chunks', { connection: redis, prefix: PREFIX });
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const exits = unexpectedExits();
      if (exits.length > 0) throw new BenchError(`${exits.join(', ')} exited during start-up; see ${logBase}.*.log`);
      const n = await queue.getWorkersCount();
      if (n >= count) return n;
      if (Date.now() > deadline) {
        say(`bench: warning: ${n} of ${count} workers registered after ${timeoutMs} ms; going on`);
        return n;
      }
      await sleep(100);
    }
  } finally {
    await queue.close().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Measurements.

/**
 * Redis bytes per row: of a queued input (used_memory delta of submits to an API with no workers),
 * then of a finished job's results (a worker runs the jobs; each job's results are what its
 * DELETE frees). What sizing maxmemory needs (docs/operations.md, "Redis memory").
 */
async function measureRedisBytesPerRow(cases, firstSubmit) {
  const memPrefix = 'bench-mem';
  const port = await freePort();
  const memEnv = serviceEnv({ PORT: String(port), REDIS_PREFIX: memPrefix });
  const api = startNode('mem-api', path.join(root, 'api/dist/main.js'), memEnv, `${logBase}.mem-api.log`);
  let worker = null;
  const http = new Client(`http://127.0.0.1:${port}`, 4);
  const settle = async () => {
    await sleep(300);
    return usedMemory(redis);
  };
  try {
    await ready(http, 'the memory-measurement API');
    // A first tiny job creates the queue's and the limiter's own keys, so they do not count.
    const first = await http.request('POST', firstSubmit.path, { headers: firstSubmit.headers, body: firstSubmit.body });
    if (first.status !== 202)
      throw new BenchError(`memory measurement: submit answered ${first.status}: ${first.body.toString().slice(0, 300)}`);
    const out = {};
    const jobs = {};
    for (const c of cases) {
      const before = await settle();
      const answer = await http.request('POST', c.submit.path, { headers: c.submit.headers, body: c.submit.body });
      if (answer.status !== 202)
        throw new BenchError(`memory measurement: submit answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
      jobs[c.name] = JSON.parse(answer.body.toString()).jobId;
      const after = await settle();
      const perRow = (after - before) / c.submit.rows;
      out[c.name] = {
        rows: c.submit.rows,
        usedMemoryDelta: after - before,
        bytesPerRow: perRow,
        rawInputBytesPerRow: c.rawBytesPerRow,
        overhead: perRow / c.rawBytesPerRow,
      };
    }
    worker = startNode('mem-worker', path.join(root, 'worker/dist/main.js'), memEnv, `${logBase}.mem-worker.log`);
    for (const c of cases) {
      for (;;) {
        const status = JSON.parse((await http.request('GET', `/v1/batch-result/${jobs[c.name]}?wait=10`)).body.toString());
        if (status.status === 'completed') break;
        if (status.status !== 'queued' && status.status !== 'running')
          throw new BenchError(`memory measurement: job ended ${status.status}`);
      }
    }
    for (const c of cases) {
      const kept = await settle();
      await http.request('DELETE', `/v1/batch-result/${jobs[c.name]}`);
      out[c.name].resultBytesPerRow = (kept - (await settle())) / c.submit.rows;
    }
    return out;
  } finally {
    http.close();
    if (worker) await stop(worker);
    await stop(api);
    await deleteKeys(redis, `${memPrefix}:*`);
  }
}

/**
 * Runs one workload against `processes` (the service, or the null service as `api` with no
 * workers) with `sampler` reset; answers its numbers.
 */
async function workload({ id, description, model, spec, processes, sampler }) {
  await deleteKeys(redis, `${PREFIX}:job:*`); // the previous workload's jobs: keep Redis peaks per workload
  await sleep(200);
  const redisBaseline = await usedMemory(redis);
  const cpuBefore = processCpu(processes);
  const benchCpuBefore = process.cpuUsage();
  const commandsBefore = await commandStats(redis);
  sampler.reset();
  // CLOCK_MONOTONIC in µs, the clock of .cpuprofile timestamps: lets a profile be cut to this workload.
  const monotonicStartUs = Number(process.hrtime.bigint() / 1000n);
  const result = await runJobs(client, spec);
  const monotonicEndUs = Number(process.hrtime.bigint() / 1000n);
  const peaks = sampler.snapshot();
  const commands = commandsPerJob(commandsBefore, await commandStats(redis), spec.jobs);
  const cpuAfter = processCpu(processes);
  const benchCpu = process.cpuUsage(benchCpuBefore);
  const cpu = {
    api: cpuAfter.api - cpuBefore.api,
    workers: cpuAfter.workers - cpuBefore.workers,
    redis: cpuAfter.redis - cpuBefore.redis,
    benchClient: (benchCpu.user + benchCpu.system) / 1e6,
    machine: cpuAfter.machine - cpuBefore.machine,
  };
  // Whatever else ran on the machine meanwhile (other test runs…): the numbers are suspect if large.
  cpu.others = Math.max(0, cpu.machine - cpu.api - cpu.workers - cpu.redis - cpu.benchClient);
  const exits = unexpectedExits();
  if (exits.length > 0) throw new BenchError(`${exits.join(', ')} exited during ${id}; see ${logBase}.*.log`);
  return {
    id,
    description,
    model: `${model.name}@${model.version}`,
    ...result,
    memory: {
      apiPeakRss: peaks.apiRss,
      workersPeakRssSum: peaks.workersRssSum,
      workerPeakRssMax: peaks.workerRssMax,
      redisBaselineUsedMemory: redisBaseline,
      redisPeakUsedMemory: peaks.redisUsedMemory,
      samples: peaks.samples,
    },
    // Commands Redis ran per job (INFO commandstats delta; commands inside Lua scripts count too).
    redisCommandsPerJob: commands.callsPerJob,
    redisCommands: commands,
    monotonicUs: { start: monotonicStartUs, end: monotonicEndUs },
    cpuSeconds: cpu,
    cpuMsPerJob: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, (v * 1000) / result.jobs])),
    cpuUtilisation: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / result.seconds])),
  };
}

/** CPU seconds so far of the API (every process of its tree), the workers, Redis and the whole machine. */
function processCpu({ api, workers, redisServer }) {
  return {
    api: processTree(api.child.pid).reduce((sum, pid) => sum + cpuSeconds(pid), 0),
    workers: workers.reduce((s, w) => s + cpuSeconds(w.child.pid), 0),
    redis: cpuSeconds(redisServer.child.pid),
    machine: machineBusySeconds(),
  };
}

// ---------------------------------------------------------------------------------------------
// Output.

const MB = (bytes) => (bytes / 1048576).toFixed(1);
const pct = (ratio) => (Number.isFinite(ratio) ? `${(ratio * 100).toFixed(1)}%` : '–');
const num = (n, digits = 0) =>
  Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–';

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const cpuColumns = (w, keys) => keys.map((k) => `${Math.round(w.cpuUtilisation[k] * 100)}`).join('/');
const waitOf = (w) => (w.pollMs === null || w.pollMs === undefined ? 'long' : `${w.pollMs} ms`);

function printReport(report) {
  say('');
  say(
    `onnx-batch bench — ${report.date} — ${report.machine.cpus} CPUs (${report.machine.cpuModel}), ${report.machine.memoryGiB} ` +
      `GiB, node ${report.machine.node}`,
  );
  say(
    `API: ${report.setup.apiProcesses} process(es); workers: ${report.setup.workers} processes × ` +
      `${report.setup.inferenceThreads} inference thread, INTRA_OP_THREADS=1; ` +
      `iris = ${report.setup.iris.model} (chunk ${report.setup.iris.chunkSize}), fashion = ${report.setup.fashion.model} (chunk ` +
      `${report.setup.fashion.chunkSize})`,
  );
  say('');
  if (Object.keys(report.raw).length > 0) {
    say('Raw ONNX Runtime (in process, one session per worker thread, intraOpNumThreads 1, session.run on ready tensors):');
    say(
      table(
        ['model', 'batch', 'threads', 'rows/s', 'ms/run', 'CPU % other'],
        Object.values(report.raw).map((r) => [
          r.model,
          r.batch,
          r.threads,
          num(r.rowsPerSecond),
          num(r.msPerRun, 2),
          Math.round(r.othersCpuUtilisation * 100),
        ]),
      ),
    );
    const disturbed = Object.values(report.raw)
      .filter((r) => r.othersCpuUtilisation > 0.2)
      .map((r) => r.model);
    if (disturbed.length > 0)
      say(`WARNING: other processes used more than 20% of a core while measuring ${disturbed.join(', ')}; the ceiling is low.`);
    say('');
  }
  if (report.workloads.length > 0) {
    say('End to end (HTTP submit → wait: long polls or polls every 5 ms → results fetched and counted):');
    say(
      table(
        [
          'workload',
          'jobs×rows',
          'in flight',
          'wait',
          'rows/s',
          'jobs/s',
          'p50 ms',
          'p95 ms',
          'p99 ms',
          'polls/job',
          'e2e/raw',
          'real/null',
          'Redis cmd/job',
          'CPU % api/wrk/redis/client/other',
        ],
        report.workloads.map((w) => [
          w.id,
          `${w.jobs}×${num(w.rows / w.jobs)}`,
          w.inFlight,
          waitOf(w),
          num(w.rowsPerSecond),
          num(w.jobsPerSecond, 1),
          num(w.latencyMs.p50, 1),
          num(w.latencyMs.p95, 1),
          num(w.latencyMs.p99, 1),
          num(w.pollsPerJob, 1),
          pct(w.ratioToRaw),
          pct(w.ratioToNull),
          num(w.redisCommandsPerJob, 1),
          cpuColumns(w, ['api', 'workers', 'redis', 'benchClient', 'others']),
        ]),
      ),
    );
    say(
      `(CPU % = CPU time during the workload ÷ its wall time, 100 = one core of ${CPUS}; 'other' = everything else on the ` +
        `machine. real/null = jobs/s ÷ the null service's.)`,
    );
    const disturbed = report.workloads.filter((w) => w.cpuUtilisation.others > 0.2).map((w) => w.id);
    if (disturbed.length > 0)
      say(
        `WARNING: other processes used more than 20% of a core during ${disturbed.join(', ')}; those numbers are low. Re-run on ` +
          `a quiet machine.`,
      );
    say('');
    say('Memory (peaks during each workload):');
    say(
      table(
        ['workload', 'API RSS MB', 'workers RSS MB sum/max', 'Redis peak MB'],
        report.workloads.map((w) => [
          w.id,
          MB(w.memory.apiPeakRss),
          `${MB(w.memory.workersPeakRssSum)}/${MB(w.memory.workerPeakRssMax)}`,
          MB(w.memory.redisPeakUsedMemory),
        ]),
      ),
    );
    say('');
    say('Redis commands per job, busiest first (INFO commandstats; commands run inside Lua scripts count too):');
    say(
      table(
        ['workload', 'total', 'top commands per job'],
        report.workloads.map((w) => [w.id, num(w.redisCommandsPerJob, 1), topCommands(w.redisCommands, 8)]),
      ),
    );
    say('');
  }
  if (report.nullService.length > 0) {
    say('Null service (the same client against an in-memory server answering every job finished at once: the ceiling):');
    say(
      table(
        ['workload', 'wait', 'rows/s', 'jobs/s', 'p50 ms', 'p99 ms', 'polls/job', 'real jobs/s', 'real/null', 'CPU % null/client/other'],
        report.nullService.map((n) => {
          const real = byId(report.workloads, n.id);
          return [
            n.id,
            waitOf(n),
            num(n.rowsPerSecond),
            num(n.jobsPerSecond, 1),
            num(n.latencyMs.p50, 2),
            num(n.latencyMs.p99, 2),
            num(n.pollsPerJob, 1),
            real ? num(real.jobsPerSecond, 1) : '–',
            pct(real?.ratioToNull),
            cpuColumns(n, ['api', 'benchClient', 'others']),
          ];
        }),
      ),
    );
    say('');
  }
  if (report.httpDiagnostics.length > 0) {
    say('API cost of a bare request (diagnostic; Redis reads ≈ round trips, fewer than requests when concurrent ones share a pipeline):');
    say(
      table(
        [
          'request',
          'in flight',
          'requests/s',
          'API CPU ms/req',
          'Redis cmd/req',
          'Redis reads/req',
          'workers CPU ms/req',
          'Redis CPU ms/req',
          'CPU % other',
        ],
        report.httpDiagnostics
          .filter((d) => !d.error)
          .map((d) => [
            d.what,
            d.inFlight,
            num(d.requestsPerSecond),
            num(d.apiCpuMsPerRequest, 3),
            num(d.redisCommandsPerRequest, 1),
            num(d.redisReadsPerRequest, 2),
            num(d.workersCpuMsPerRequest, 3),
            num(d.redisCpuMsPerRequest, 3),
            Math.round(d.othersCpuUtilisation * 100),
          ]),
      ),
    );
    say('');
  }
  if (report.redisBytesPerRow) {
    say("Redis memory per row: a queued input (used_memory delta, API without workers) and a finished job's results:");
    say(
      table(
        ['model', 'rows', 'queued bytes/row', 'packed input bytes/row', 'ratio', 'result bytes/row'],
        Object.entries(report.redisBytesPerRow).map(([name, m]) => [
          name,
          num(m.rows),
          num(m.bytesPerRow, 1),
          m.rawInputBytesPerRow,
          `${m.overhead.toFixed(2)}×`,
          num(m.resultBytesPerRow, 1),
        ]),
      ),
    );
    say('');
  }
  printCache(report.cache, say, table, num);
  printDrift(report.drift, say, table, num);
  if (report.targets.length > 0) {
    say('Targets (issue 12; reported, not asserted):');
    for (const t of report.targets) say(`  ${t.met ? 'met   ' : 'MISSED'} ${t.target}: measured ${t.measured}`);
    say('');
  }
  say(`JSON: ${path.relative(root, report.file)}`);
}

// ---------------------------------------------------------------------------------------------
// Main.

let redisUrl = '';

async function main() {
  mkdirSync(resultsDir, { recursive: true });
  const iris = loadDefaultModel(path.join(root, 'models'), 'iris');
  const fashion = loadDefaultModel(path.join(root, 'models'), 'fashion');
  const irisChunk = iris.manifest.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const fashionChunk = fashion.manifest.chunkSize ?? DEFAULT_CHUNK_SIZE;
  const irisData = irisRows(iris);
  const { images, source: imageSource } = fashionImages(FASHION_ROWS);
  const fashionRows = images.map((b64) => [b64]); // distinct images; workloads cycle through them

  // Request bodies, built once.
  const irisJson = (count) => jsonSubmit({ model: 'iris', version: iris.version, inputs: cycle(irisData, count) }, count);
  const submits = {
    one: irisJson(1),
    hundred: irisJson(100),
    bigNdjson: ndjsonSubmit('iris', iris.version, ndjsonLines(irisData, 100_000), 100_000),
    bigJson: irisJson(100_000),
    // As many distinct bodies as the distinct images fill (5 for t10k's 10 000); W4 cycles them.
    fashion: Array.from({ length: Math.max(1, Math.floor(fashionRows.length / FASHION_JOB_ROWS)) }, (_, k) =>
      jsonSubmit(
        { model: 'fashion', version: fashion.version, inputs: cycle(fashionRows, FASHION_JOB_ROWS, k * FASHION_JOB_ROWS) },
        FASHION_JOB_ROWS,
      ),
    ),
  };
  const fashionSubmit = (i) => submits.fashion[i % submits.fashion.length];
  // The same rows as columnar bodies: Arrow in and out, Parquet in and out.
  const irisTable = irisColumns(iris, irisData, 100_000);
  submits.bigArrow = binarySubmit('iris', iris.version, ARROW, arrowStream(tableFromArrays(irisTable)), 100_000, ARROW_RESULTS);
  submits.bigParquet = binarySubmit(
    'iris',
    iris.version,
    PARQUET,
    parquetFile(Object.entries(irisTable).map(([name, data]) => ({ name, data, type: 'FLOAT' }))),
    100_000,
    PARQUET_RESULTS,
  );
  const imageName = fashion.manifest.features[0].name;
  const fashionColumnar = (k) => {
    const bytes = imageBytes(images, FASHION_JOB_ROWS, k * FASHION_JOB_ROWS);
    const data = makeData({ type: new FixedSizeBinary(784), length: FASHION_JOB_ROWS, nullCount: 0, data: bytes });
    const arrow = arrowStream(new Table({ [imageName]: makeVector(data) }));
    const values = Array.from({ length: FASHION_JOB_ROWS }, (_, i) => bytes.subarray(i * 784, (i + 1) * 784));
    const parquet = parquetFile([{ name: imageName, data: values, type: 'BYTE_ARRAY' }]);
    return {
      arrow: binarySubmit('fashion', fashion.version, ARROW, arrow, FASHION_JOB_ROWS, ARROW_RESULTS),
      parquet: binarySubmit('fashion', fashion.version, PARQUET, parquet, FASHION_JOB_ROWS, PARQUET_RESULTS),
    };
  };
  submits.fashionColumnar = submits.fashion.map((_, k) => fashionColumnar(k));
  const fashionArrow = (i) => submits.fashionColumnar[i % submits.fashionColumnar.length].arrow;
  const fashionParquet = (i) => submits.fashionColumnar[i % submits.fashionColumnar.length].parquet;

  const report = {
    date: new Date().toISOString(),
    machine: {
      cpus: CPUS,
      cpuModel: os.cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      platform: `${os.type()} ${os.release()} ${os.arch()}`,
      redis: execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim(),
      loadAverageAtStart: os.loadavg(),
    },
    git: gitState(),
    setup: {
      workers: WORKERS,
      inferenceThreads: Number(process.env.INFERENCE_THREADS || 1),
      intraOpThreads: 1,
      rateLimitPerMinute: Number(RATE_LIMIT),
      apiProcesses: Number(API_PROCESSES),
      pollMs: POLL_MS,
      iris: { model: `iris@${iris.version}`, chunkSize: irisChunk, rows: 'golden.json rows (150, cycled) as arrays' },
      fashion: {
        model: `fashion@${fashion.version}`,
        chunkSize: fashionChunk,
        rows: `${imageSource}, base64 of 784 bytes as one-element arrays`,
      },
      passedThrough: Object.fromEntries(
        ['CHUNK_SIZE', 'WORKER_CONCURRENCY', 'MAX_BATCH_ROWS', 'INFERENCE_THREADS', 'INLINE_RESULTS_LIMIT']
          .filter((k) => process.env[k])
          .map((k) => [k, process.env[k]]),
      ),
    },
    raw: {},
    redisBytesPerRow: null,
    workloads: [],
    nullService: [],
    httpDiagnostics: [],
    targets: [],
    file: `${logBase}.json`,
  };

  // 1. Private Redis.
  const redisPort = await freePort();
  const redisServer = await startRedis(redisPort);
  redisUrl = `redis://127.0.0.1:${redisPort}`;
  redis = new Redis(redisUrl, { maxRetriesPerRequest: 2 });
  say(`bench: redis-server pid ${redisServer.child.pid} on port ${redisPort}`);

  // 2. The ceiling, measured before any service process runs so nothing competes for the CPUs.
  if (wanted('raw')) {
    for (const [key, model, rows, batch] of [
      ['iris', iris, irisData, irisChunk],
      ['fashion', fashion, fashionRows, fashionChunk],
    ]) {
      say(`bench: raw ONNX Runtime, ${model.name}@${model.version}, batch ${batch}, ${CPUS} threads…`);
      const machineBefore = machineBusySeconds();
      const benchBefore = process.cpuUsage();
      const raw = await measureRaw({ requireFrom, model, rows, batch, threads: CPUS });
      const bench = process.cpuUsage(benchBefore);
      // Includes thread start-up and session creation; what is left over ran elsewhere on the machine.
      const others = machineBusySeconds() - machineBefore - (bench.user + bench.system) / 1e6;
      report.raw[key] = { ...raw, othersCpuUtilisation: Math.max(0, others) / raw.seconds };
    }
  }

  // 3. Redis bytes per input row, with an API that has no workers (its own key prefix).
  if (wanted('mem')) {
    say('bench: Redis memory per queued row…');
    report.redisBytesPerRow = await measureRedisBytesPerRow(
      [
        { name: `iris@${iris.version}`, submit: submits.bigNdjson, rawBytesPerRow: storedBytesPerRow(iris.manifest) },
        {
          name: `fashion@${fashion.version}`,
          submit: jsonSubmit(
            { model: 'fashion', version: fashion.version, inputs: fashionRows.slice(0, 10_000) },
            Math.min(10_000, fashionRows.length),
          ),
          rawBytesPerRow: storedBytesPerRow(fashion.manifest),
        },
      ],
      submits.one,
    );
  }

  const W2_DESCRIPTION = '10 jobs × 100 000 iris rows (NDJSON stream), 2 in flight';
  const W2_SPEC = { jobs: 10, inFlight: 2, submitFor: () => submits.bigNdjson };
  // The workloads, in the order they run. `pollMs` null = long polls (`?wait=30`), a number = the
  // integration guide's client (poll without `?wait=` every pollMs). `ceiling: true` also runs it
  // against the null service; `smallJobs: true` (figures that depend on a warm JIT) gets the long
  // warm-up. (New workloads go here; their targets go in TARGETS.)
  const plan = [
    {
      id: 'W1',
      description: '200 jobs × 100 iris rows (JSON), long polls, 8 in flight',
      model: iris,
      ceiling: true,
      smallJobs: true,
      spec: { jobs: 200, inFlight: 8, submitFor: () => submits.hundred },
    },
    {
      id: 'W1poll',
      description: `200 jobs × 100 iris rows (JSON), polls every ${POLL_MS} ms, 8 in flight`,
      model: iris,
      ceiling: true,
      smallJobs: true,
      spec: { jobs: 200, inFlight: 8, pollMs: POLL_MS, submitFor: () => submits.hundred },
    },
    { id: 'W2', description: W2_DESCRIPTION, model: iris, spec: W2_SPEC },
    {
      id: 'W2json',
      description: '10 jobs × 100 000 iris rows (one JSON body), 2 in flight',
      model: iris,
      spec: { jobs: 10, inFlight: 2, submitFor: () => submits.bigJson },
    },
    {
      id: 'W2arrow',
      description: '10 jobs × 100 000 iris rows (Arrow IPC stream in, Arrow out), 2 in flight',
      model: iris,
      spec: { jobs: 10, inFlight: 2, submitFor: () => submits.bigArrow },
    },
    {
      id: 'W2parquet',
      description: '10 jobs × 100 000 iris rows (Parquet in, Parquet out), 2 in flight',
      model: iris,
      spec: { jobs: 10, inFlight: 2, submitFor: () => submits.bigParquet },
    },
    {
      id: 'W3',
      description: '1000 jobs × 1 iris row (JSON), long polls, 32 in flight',
      model: iris,
      ceiling: true,
      smallJobs: true,
      spec: { jobs: 1000, inFlight: 32, submitFor: () => submits.one },
    },
    {
      id: 'W3poll',
      description: `1000 jobs × 1 iris row (JSON), polls every ${POLL_MS} ms, 32 in flight`,
      model: iris,
      ceiling: true,
      smallJobs: true,
      spec: { jobs: 1000, inFlight: 32, pollMs: POLL_MS, submitFor: () => submits.one },
    },
    {
      id: 'W5',
      description: '300 jobs × 1 iris row (JSON), long polls, one at a time',
      model: iris,
      smallJobs: true,
      spec: { jobs: 300, inFlight: 1, submitFor: () => submits.one },
    },
    {
      id: 'W4',
      description: `${FASHION_ROWS} Fashion-MNIST images as base64 (JSON), jobs of ${FASHION_JOB_ROWS}, 2 in flight`,
      model: fashion,
      spec: { jobs: FASHION_ROWS / FASHION_JOB_ROWS, inFlight: 2, submitFor: fashionSubmit },
    },
    {
      id: 'W4arrow',
      description: `${FASHION_ROWS} Fashion-MNIST images as FixedSizeBinary(784) (Arrow in, out), jobs of ${FASHION_JOB_ROWS}, 2 in flight`,
      model: fashion,
      spec: { jobs: FASHION_ROWS / FASHION_JOB_ROWS, inFlight: 2, submitFor: fashionArrow },
    },
    {
      id: 'W4parquet',
      description: `${FASHION_ROWS} Fashion-MNIST images as BYTE_ARRAY (Parquet in, out), jobs of ${FASHION_JOB_ROWS}, 2 in flight`,
      model: fashion,
      spec: { jobs: FASHION_ROWS / FASHION_JOB_ROWS, inFlight: 2, submitFor: fashionParquet },
    },
    // Diagnostic, not a target: W4 with the pipeline kept fuller (shows what 2 in flight leaves idle).
    {
      id: 'W4x4',
      description: `${FASHION_ROWS} Fashion-MNIST images as base64 (JSON), jobs of ${FASHION_JOB_ROWS}, 4 in flight`,
      model: fashion,
      spec: { jobs: FASHION_ROWS / FASHION_JOB_ROWS, inFlight: 4, submitFor: fashionSubmit },
    },
  ].filter((w) => wanted(w.id));

  // 4. The ceiling of the client: the same workloads against the null service, before the service starts.
  const ceilings = plan.filter((w) => w.ceiling && (!ONLY || ONLY.has('null')));
  if (ceilings.length > 0) {
    const port = await freePort();
    const nullService = startNode(
      'null-service',
      path.join(root, 'scripts/bench-null-service.mjs'),
      { PATH: process.env.PATH ?? '', PORT: String(port) },
      `${logBase}.null-service.log`,
    );
    client = new Client(`http://127.0.0.1:${port}`, 64);
    try {
      await ready(client, 'the null service');
      const nullSampler = new Sampler({ apiPids: () => [nullService.child.pid], workerPids: [], redis });
      samplers.add(nullSampler);
      nullSampler.start();
      say(`bench: null service pid ${nullService.child.pid} on port ${port}; warming up…`);
      await warmUpSmallJobs(client, submits);
      for (const w of ceilings) {
        say(`bench: null service ${w.id}: ${w.description}…`);
        const n = await workload({ ...w, processes: { api: nullService, workers: [], redisServer }, sampler: nullSampler });
        report.nullService.push(n);
        say(
          `bench:   ${num(n.rowsPerSecond)} rows/s, ${num(n.jobsPerSecond, 1)} jobs/s, p50 ${num(n.latencyMs.p50, 1)} ms, ` +
            `${num(n.pollsPerJob, 1)} polls/job`,
        );
      }
      nullSampler.stop();
    } finally {
      client.close();
      client = null;
      await stop(nullService);
    }
  }

  if (plan.length > 0 || wanted('http') || wanted('W6') || wanted('drift')) {
    // 5. The service: the API (API_PROCESSES processes), WORKERS worker processes.
    const apiPort = await freePort();
    const api = startNode(
      'api',
      path.join(root, 'api/dist/main.js'),
      serviceEnv({ PORT: String(apiPort) }),
      `${logBase}.api.log`,
      NODE_ARGS,
    );
    const workers = Array.from({ length: WORKERS }, (_, i) =>
      startNode(`worker-${i + 1}`, path.join(root, 'worker/dist/main.js'), serviceEnv({}), `${logBase}.worker-${i + 1}.log`, NODE_ARGS),
    );
    client = new Client(`http://127.0.0.1:${apiPort}`, 64);
    await ready(client, 'the API');
    const registered = await waitForWorkers(WORKERS);
    say(
      `bench: API pid ${api.child.pid} on port ${apiPort} (API_PROCESSES=${API_PROCESSES}); ${registered} worker processes (pids ` +
        `${workers.map((w) => w.child.pid).join(', ')})`,
    );
    const sampler = new Sampler({ apiPids: () => processTree(api.child.pid), workerPids: workers.map((w) => w.child.pid), redis });
    samplers.add(sampler);
    sampler.start();
    const processes = { api, workers, redisServer };

    // Warm-up: every worker's sessions, the API's JIT, the connection pool; small jobs as the null
    // service's were (V8 keeps optimising the submit and poll paths for the first thousands of jobs).
    say('bench: warming up…');
    // (Only the kinds of job selected, so a profile of one workload is not diluted.)
    if (plan.some((w) => w.smallJobs)) await warmUpSmallJobs(client, submits);
    else {
      await runJobs(client, { jobs: 40, inFlight: 8, submitFor: () => submits.hundred });
      await runJobs(client, { jobs: 40, inFlight: 8, submitFor: () => submits.one });
    }
    if (wanted('W2') || wanted('W2json')) await runJobs(client, { jobs: 2, inFlight: 2, submitFor: () => submits.bigNdjson });
    if (wanted('W2arrow')) await runJobs(client, { jobs: 2, inFlight: 2, submitFor: () => submits.bigArrow });
    if (wanted('W2parquet')) await runJobs(client, { jobs: 2, inFlight: 2, submitFor: () => submits.bigParquet });
    if (wanted('W4') || wanted('W4x4')) await runJobs(client, { jobs: 4, inFlight: 2, submitFor: fashionSubmit });
    if (wanted('W4arrow')) await runJobs(client, { jobs: 4, inFlight: 2, submitFor: fashionArrow });
    if (wanted('W4parquet')) await runJobs(client, { jobs: 4, inFlight: 2, submitFor: fashionParquet });

    for (const w of plan) {
      say(`bench: ${w.id}: ${w.description}…`);
      const result = await workload({ ...w, processes, sampler });
      const raw = report.raw[w.model.name];
      result.ratioToRaw = raw ? result.rowsPerSecond / raw.rowsPerSecond : NaN;
      const ceiling = report.nullService.find((n) => n.id === w.id);
      result.ratioToNull = ceiling ? result.jobsPerSecond / ceiling.jobsPerSecond : NaN;
      report.workloads.push(result);
      say(
        `bench:   ${num(result.rowsPerSecond)} rows/s, ${num(result.jobsPerSecond, 1)} jobs/s, p50 ` +
          `${num(result.latencyMs.p50, 1)} ms, p99 ${num(result.latencyMs.p99, 1)} ms, ${num(result.pollsPerJob, 1)} polls/job`,
      );
      say(
        `bench:   CPU ms/job: API ${num(result.cpuMsPerJob.api, 2)}, workers ${num(result.cpuMsPerJob.workers, 2)}, Redis ` +
          `${num(result.cpuMsPerJob.redis, 2)}, bench client ${num(result.cpuMsPerJob.benchClient, 2)}, others ` +
          `${num(result.cpuMsPerJob.others, 2)}`,
      );
      result.apiCpuMicrosPerRow = (result.cpuSeconds.api * 1e6) / result.rows;
      say(`bench:   API CPU ${num(result.apiCpuMicrosPerRow, 3)} µs/row, ${pct(result.ratioToRaw)} of raw ONNX Runtime`);
      say(
        `bench:   Redis: ${num(result.redisCommandsPerJob, 1)} commands/job (${topCommands(result.redisCommands, 8)}), ` +
          `${num(result.redisCommands.usecPerJob)} µs/job inside Redis`,
      );
    }
    sampler.stop();

    // 6. Diagnostics: what one HTTP request costs, without a job behind it.
    if (wanted('http')) {
      const finished = await runJob(client, submits.one);
      const cases = [
        ['GET /livez (no Redis, no auth)', { count: 3000, inFlight: 32, path: '/livez' }],
        ['GET /v1/batch-result/:id of a finished 1-row job', { count: 2000, inFlight: 32, path: `/v1/batch-result/${finished.jobId}` }],
        [
          'GET /v1/batch-result/:id of a finished 1-row job, one at a time',
          { count: 500, inFlight: 1, path: `/v1/batch-result/${finished.jobId}` },
        ],
        // Submits alone (the workers run the jobs meanwhile); few in flight so the active-job limit is not hit.
        [
          'POST /v1/batch-predict, 1 row, no polling',
          {
            count: 500,
            inFlight: 8,
            method: 'POST',
            path: submits.one.path,
            headers: submits.one.headers,
            body: submits.one.body,
            expect: 202,
          },
        ],
      ];
      for (const [what, spec] of cases) report.httpDiagnostics.push(await diagnostic(what, spec, { client, redis, processes }));
      report.httpDiagnostics.push(...(await unfinishedPollDiagnostics(submits.one)));
    }
    // The prediction cache (scripts/bench-cache.mjs): restarts the workers with the cache on.
    if (wanted('W6')) {
      sampler.start();
      report.cache = await benchCache({
        say,
        root,
        workers: workers.length,
        restartWorkers: (tag, env) => restartWorkers(workers, sampler, tag, env),
        serviceEnv,
        logBase,
        nodeArgs: NODE_ARGS,
        redis,
        version: iris.version,
      });
      sampler.stop();
    }
    // Drift statistics off and on (scripts/bench-drift.mjs): restarts the workers, so it comes last.
    if (wanted('drift')) {
      const w2 = [W2_DESCRIPTION, iris, W2_SPEC];
      sampler.start();
      report.drift = await benchDrift({
        say,
        root,
        workers: workers.length,
        restartWorkers: (tag, env) => restartWorkers(workers, sampler, tag, env),
        client,
        redis,
        prefix: PREFIX,
        w2,
        workload: (id, description, model, spec) => workload({ id, description, model, spec, processes, sampler }),
      });
      sampler.stop();
    }
    await deleteKeys(redis, `${PREFIX}:job:*`);
  }

  report.targets = TARGETS.flatMap((t) => {
    const measured = t.measure(report);
    return measured ? [{ target: t.target, ...measured }] : [];
  });
  const w2 = report.workloads.filter((w) => w.id === 'W2' || w.id === 'W2json');
  if (w2.length === 2) {
    const [fast, slow] = w2[0].rowsPerSecond >= w2[1].rowsPerSecond ? w2 : [w2[1], w2[0]];
    report.w2Faster = { faster: fast.id, fasterRowsPerSecond: fast.rowsPerSecond, other: slow.id, otherRowsPerSecond: slow.rowsPerSecond };
  }
  writeFileSync(report.file, `${JSON.stringify(report, null, 2)}\n`);
  printReport(report);
}

/** The busiest commands of a commandsPerJob answer, as "evalsha 9.0, hgetall 4.1, …". */
const topCommands = (commands, n) =>
  commands.commands
    .slice(0, n)
    .map((c) => `${c.command} ${num(c.callsPerJob, 1)}`)
    .join(', ');

/**
 * The same warm-up for onnx-batch and the null service before the small-job workloads: 1000
 * 1-row and 200 100-row jobs, with each way of waiting.
 */
async function warmUpSmallJobs(client, submits) {
  for (const pollMs of [null, POLL_MS]) {
    await runJobs(client, { jobs: 1000, inFlight: 32, pollMs, submitFor: () => submits.one });
    await runJobs(client, { jobs: 200, inFlight: 8, pollMs, submitFor: () => submits.hundred });
  }
}

/**
 * `spec.count` identical requests against the service: answers requests/s and, per request, CPU
 * of the API, workers and Redis, the commands Redis ran and its read events (≈ round trips).
 * `on` = { client, redis, processes }: where to send them and what to measure.
 */
async function diagnostic(what, spec, on) {
  say(`bench: diagnostic: ${what}…`);
  await sleep(300);
  const before = processCpu(on.processes);
  const benchBefore = process.cpuUsage();
  const commandsBefore = await commandStats(on.redis);
  const readsBefore = await redisReads(on.redis);
  try {
    const result = await runRequests(on.client, spec);
    const readsAfter = await redisReads(on.redis);
    const commands = commandsPerJob(commandsBefore, await commandStats(on.redis), spec.count);
    const after = processCpu(on.processes);
    const bench = process.cpuUsage(benchBefore);
    const perRequest = (a, b) => ((a - b) * 1000) / spec.count;
    const others =
      after.machine -
      before.machine -
      (after.api - before.api) -
      (after.workers - before.workers) -
      (after.redis - before.redis) -
      (bench.user + bench.system) / 1e6;
    return {
      what,
      ...result,
      apiCpuMsPerRequest: perRequest(after.api, before.api),
      workersCpuMsPerRequest: perRequest(after.workers, before.workers),
      redisCpuMsPerRequest: perRequest(after.redis, before.redis),
      redisCommandsPerRequest: commands.callsPerJob,
      redisCommands: commands.commands,
      // total_reads_processed counts this INFO and the commandstats one too: 2 reads of the bench's own.
      redisReadsPerRequest: Math.max(0, readsAfter - readsBefore - 2) / spec.count,
      othersCpuUtilisation: Math.max(0, others) / result.seconds,
    };
  } catch (error) {
    say(`bench: diagnostic failed (not fatal): ${error.message}`);
    return { what, error: error.message };
  }
}

/**
 * Polls of a job that has not finished: an API on a Redis of its own (so that Redis counts its
 * commands alone), with no worker, holds one queued 1-row job; after 10 000 polls of warm-up it
 * is polled (no `?wait=`) 32 at a time for CPU per poll, and one at a time for Redis round trips per poll.
 */
async function unfinishedPollDiagnostics(submit) {
  const redisPort = await freePort();
  const redisServer = await startRedis(redisPort);
  const ownRedis = new Redis(`redis://127.0.0.1:${redisPort}`, { maxRetriesPerRequest: 2 });
  const port = await freePort();
  const api = startNode(
    'unfinished-api',
    path.join(root, 'api/dist/main.js'),
    serviceEnv({ PORT: String(port), REDIS_URL: `redis://127.0.0.1:${redisPort}` }),
    `${logBase}.unfinished-api.log`,
  );
  const http = new Client(`http://127.0.0.1:${port}`, 64);
  try {
    await ready(http, 'the API without workers');
    const answer = await http.request('POST', submit.path, { headers: submit.headers, body: submit.body });
    if (answer.status !== 202)
      throw new BenchError(`unfinished-job diagnostic: submit answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
    const path = `/v1/batch-result/${JSON.parse(answer.body.toString('utf8')).jobId}`;
    const status = JSON.parse((await http.request('GET', path)).body.toString('utf8')).status;
    if (status !== 'queued') throw new BenchError(`unfinished-job diagnostic: the job is ${status}, not queued`);
    // Warm-up: a client polling all day meets a JIT-compiled poll path, not the first thousand requests' interpreter.
    await runRequests(http, { count: 10_000, inFlight: 32, path });
    const on = { client: http, redis: ownRedis, processes: { api, workers: [], redisServer } };
    return [
      await diagnostic('GET /v1/batch-result/:id of an UNFINISHED 1-row job', { count: 10_000, inFlight: 32, path }, on),
      await diagnostic('GET /v1/batch-result/:id of an UNFINISHED 1-row job, one at a time', { count: 500, inFlight: 1, path }, on),
    ];
  } catch (error) {
    say(`bench: diagnostic failed (not fatal): ${error.message}`);
    return [{ what: 'GET /v1/batch-result/:id of an UNFINISHED 1-row job', error: error.message }];
  } finally {
    http.close();
    await stop(api);
    ownRedis.disconnect();
    await stop(redisServer);
  }
}

// ---------------------------------------------------------------------------------------------
// Targets (issue 12): reported, never asserted. Each answers null when its workload did not run.
// (New targets go here, next to their workload's entry in the plan.)

const byId = (list, id) => list.find((w) => w.id === id);
const TARGETS = [
  {
    target: 'W3 ≥ 1 000 jobs/s (long polls)',
    measure: (r) =>
      byId(r.workloads, 'W3') && {
        measured: `${num(byId(r.workloads, 'W3').jobsPerSecond, 1)} jobs/s`,
        met: byId(r.workloads, 'W3').jobsPerSecond >= 1000,
      },
  },
  {
    target: `W3poll ≥ 70 % of the null service (polls every ${POLL_MS} ms)`,
    measure: (r) => {
      const w = byId(r.workloads, 'W3poll');
      return (
        w &&
        Number.isFinite(w.ratioToNull) && {
          measured: `${pct(w.ratioToNull)} (${num(w.jobsPerSecond, 1)} of ${num(byId(r.nullService, 'W3poll').jobsPerSecond, 1)} jobs/s)`,
          met: w.ratioToNull >= 0.7,
        }
      );
    },
  },
  {
    target: 'W1 ≥ 60 000 rows/s',
    measure: (r) =>
      byId(r.workloads, 'W1') && {
        measured: `${num(byId(r.workloads, 'W1').rowsPerSecond)} rows/s`,
        met: byId(r.workloads, 'W1').rowsPerSecond >= 60_000,
      },
  },
  {
    target: 'W2 ≥ 500 000 rows/s (the faster of W2, W2json)',
    measure: (r) => {
      const w = [byId(r.workloads, 'W2'), byId(r.workloads, 'W2json')].filter(Boolean).sort((a, b) => b.rowsPerSecond - a.rowsPerSecond)[0];
      return w && { measured: `${num(w.rowsPerSecond)} rows/s (${w.id})`, met: w.rowsPerSecond >= 500_000 };
    },
  },
  {
    target: 'W2arrow ≥ 2 000 000 rows/s (≥ 25 % of raw), API CPU ≤ 0.1 µs/row',
    measure: (r) => {
      const w = byId(r.workloads, 'W2arrow');
      return (
        w && {
          measured: `${num(w.rowsPerSecond)} rows/s = ${pct(w.ratioToRaw)} of raw, API ${num(w.apiCpuMicrosPerRow, 3)} µs/row`,
          met: w.rowsPerSecond >= 2_000_000 && w.ratioToRaw >= 0.25 && w.apiCpuMicrosPerRow <= 0.1,
        }
      );
    },
  },
  {
    target: 'W4arrow ≥ 70 % of raw ONNX Runtime, API CPU ≤ 2 µs/image',
    measure: (r) => {
      const w = byId(r.workloads, 'W4arrow');
      return (
        w && {
          measured: `${pct(w.ratioToRaw)} of raw, API ${num(w.apiCpuMicrosPerRow, 2)} µs/image`,
          met: w.ratioToRaw >= 0.7 && w.apiCpuMicrosPerRow <= 2,
        }
      );
    },
  },
  ...[
    ['W2parquet', 'W2arrow'],
    ['W4parquet', 'W4arrow'],
  ].map(([parquet, arrow]) => ({
    target: `${parquet} ≥ half of ${arrow}'s rows/s`,
    measure: (r) => {
      const p = byId(r.workloads, parquet);
      const a = byId(r.workloads, arrow);
      return (
        p &&
        a && {
          measured:
            `${num(p.rowsPerSecond)} of ${num(a.rowsPerSecond)} rows/s (${pct(p.rowsPerSecond / a.rowsPerSecond)}), ` +
            `API ${num(p.apiCpuMicrosPerRow, 2)} µs/row`,
          met: p.rowsPerSecond >= a.rowsPerSecond / 2,
        }
      );
    },
  })),
  {
    target: 'W5 p50 ≤ 2 ms',
    measure: (r) =>
      byId(r.workloads, 'W5') && {
        measured: `${num(byId(r.workloads, 'W5').latencyMs.p50, 2)} ms`,
        met: byId(r.workloads, 'W5').latencyMs.p50 <= 2,
      },
  },
  {
    target: 'W4 ≥ 70 % of raw ONNX Runtime',
    measure: (r) => {
      const w = byId(r.workloads, 'W4');
      return w && Number.isFinite(w.ratioToRaw) && { measured: pct(w.ratioToRaw), met: w.ratioToRaw >= 0.7 };
    },
  },
  {
    target: '≤ 40 Redis commands per 1-row job (W3)',
    measure: (r) =>
      byId(r.workloads, 'W3') && {
        measured: `${num(byId(r.workloads, 'W3').redisCommandsPerJob, 1)} commands/job`,
        met: byId(r.workloads, 'W3').redisCommandsPerJob <= 40,
      },
  },
  {
    target: 'W6 p50 ≤ 1 ms on a cache hit',
    measure: (r) =>
      r.cache && {
        measured: `${num(r.cache.hit.latencyMs.p50, 3)} ms (a miss, run as a job: ${num(r.cache.miss.latencyMs.p50, 2)} ms)`,
        met: r.cache.hit.latencyMs.p50 <= 1,
      },
  },
  {
    target: 'poll of an unfinished job ≤ 0.1 ms API CPU and ≤ 1 Redis round trip',
    measure: (r) => {
      const many = r.httpDiagnostics.find((d) => !d.error && d.what === 'GET /v1/batch-result/:id of an UNFINISHED 1-row job');
      const one = r.httpDiagnostics.find(
        (d) => !d.error && d.what === 'GET /v1/batch-result/:id of an UNFINISHED 1-row job, one at a time',
      );
      return (
        many &&
        one && {
          measured:
            `${num(many.apiCpuMsPerRequest, 3)} ms CPU (32 in flight), ${num(one.redisReadsPerRequest, 2)} round trips ` +
            `and ${num(one.redisCommandsPerRequest, 1)} commands per poll (one at a time)`,
          met: many.apiCpuMsPerRequest <= 0.1 && one.redisReadsPerRequest <= 1,
        }
      );
    },
  },
];

function gitState() {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: root, encoding: 'utf8' }).trim() !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}

main().then(
  () => shutdown(0),
  (error) => {
    if (shuttingDown) return; // interrupted: requests in flight fail as their processes stop
    process.stderr.write(`bench: FAILED: ${error instanceof Error ? error.message : String(error)}\n`);
    if (!(error instanceof BenchError) && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
    const exits = unexpectedExits();
    if (exits.length > 0) process.stderr.write(`bench: processes that exited unexpectedly: ${exits.join(', ')}\n`);
    process.stderr.write(`bench: process logs: ${logBase}.*.log\n`);
    void shutdown(1);
  },
);
