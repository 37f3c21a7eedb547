// `npm run sizing`: the numbers behind the sizing guide of docs/operations.md. Starts its own
// redis-server (loopback, no persistence), API and worker processes, and measures:
//   1. Redis memory per queued row, per model, and per queued 1-row job (API only, no workers);
//   2. per job, by job size: Redis commands, Redis main-thread CPU, network bytes, and the CPU the
//      API and workers spent (INFO commandstats / cpu / stats deltas around a batch of jobs);
//   3. on a 3-master Redis Cluster, how 1-row jobs spread their Redis CPU over the masters with
//      one queue shard and with three (SIZING_CLUSTER=0 skips it).
// From these it derives the jobs/s and rows/s at which one Redis main thread would be saturated
// and how many workers one Redis feeds. Every phase has a fixed amount of work; the whole run is
// stopped after SIZING_TIMEOUT_S (default 600). Results: stdout and bench-results/sizing-<stamp>.json.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BenchError, Client, jsonSubmit, ndjsonSubmit, runJobs, waitReady } from './bench-client.mjs';
import {
  commandStats,
  commandsPerJob,
  cpuSeconds,
  deleteKeys,
  freePort,
  killAllNow,
  startNode,
  startRedis,
  stop,
  stopAll,
  usedMemory,
} from './bench-procs.mjs';
import { goldenInputs, loadDefaultModel, storedBytesPerRow } from './bench-raw.mjs';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const requireFromRoot = createRequire(path.join(root, 'package.json'));
const Redis = requireFromRoot('ioredis');

const WORKERS = Number(process.env.WORKERS || 2);
const TIMEOUT_S = Number(process.env.SIZING_TIMEOUT_S || 600);
const CLUSTER = process.env.SIZING_CLUSTER !== '0';
const PREFIX = 'sizing';
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const resultsDir = path.join(root, 'bench-results');
const logBase = path.join(resultsDir, `sizing-${stamp}`);
const say = (text) => process.stdout.write(`${text}\n`);
process.on('exit', killAllNow);
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
const deadline = setTimeout(() => {
  say(`sizing: stopped after ${TIMEOUT_S} s (SIZING_TIMEOUT_S)`);
  void stopAll().then(() => process.exit(1));
}, TIMEOUT_S * 1000);
deadline.unref();

// ---------------------------------------------------------------------------------------------

function golden(name) {
  const model = loadDefaultModel(path.join(root, 'models'), name);
  const rows = goldenInputs(model);
  return { model, rows };
}
const cycle = (rows, count, offset = 0) => Array.from({ length: count }, (_, i) => rows[(offset + i) % rows.length]);
const ndjson = (rows, count) =>
  cycle(rows, count)
    .map((r) => `${JSON.stringify(r)}\n`)
    .join('');

/** Redis INFO fields as numbers: main-thread CPU seconds, network bytes, commands. */
async function redisCounters(redis) {
  const info = await redis.info();
  const num = (name) => Number(new RegExp(`^${name}:([0-9.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return {
    cpu: num('used_cpu_user_main_thread') + num('used_cpu_sys_main_thread'),
    netIn: num('total_net_input_bytes'),
    netOut: num('total_net_output_bytes'),
    commands: num('total_commands_processed'),
  };
}

function serviceEnv(redisEnv, extra = {}) {
  return {
    PATH: process.env.PATH,
    ...redisEnv,
    REDIS_PREFIX: PREFIX,
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // One API process, as docs/operations.md describes the run (its CPU is read from that one pid).
    API_PROCESSES: '1',
    RATE_LIMIT_PER_MINUTE: '0',
    MAX_ACTIVE_JOBS_PER_TENANT: '100000',
    RECOVERY_INTERVAL_MS: '5000',
    METRICS_PORT: '0',
    SHUTDOWN_GRACE_MS: '5000',
    ...extra,
  };
}

async function startStack(name, redisEnv, workers, extra = {}) {
  const port = await freePort();
  const api = startNode(
    `${name}-api`,
    path.join(root, 'api/dist/main.js'),
    serviceEnv(redisEnv, { PORT: String(port), ...extra }),
    `${logBase}.${name}-api.log`,
  );
  const workerProcs = Array.from({ length: workers }, (_, i) =>
    startNode(
      `${name}-worker${i}`,
      path.join(root, 'worker/dist/main.js'),
      serviceEnv(redisEnv, extra),
      `${logBase}.${name}-worker${i}.log`,
    ),
  );
  const client = new Client(`http://127.0.0.1:${port}`, 64);
  await waitReady(client, `${name} API`, { logs: `${logBase}.${name}-*.log`, timeoutMs: 30_000 });
  await sleep(workers > 0 ? 1500 : 0); // workers load their models
  return {
    api,
    workers: workerProcs,
    client,
    async stop() {
      client.close();
      await Promise.all([api, ...workerProcs].map((p) => stop(p)));
    },
  };
}

// ---------------------------------------------------------------------------------------------

async function memoryPerRow(redis, redisEnv) {
  const stack = await startStack('mem', redisEnv, 0);
  const iris = golden('iris');
  const spam = golden('spam');
  const fashion = golden('fashion');
  const cases = [
    {
      name: `iris@${iris.model.version}`,
      submit: ndjsonSubmit('iris', iris.model.version, ndjson(iris.rows, 100_000), 100_000),
      raw: storedBytesPerRow(iris.model.manifest),
    },
    {
      name: `spam@${spam.model.version}`,
      submit: jsonSubmit({ model: 'spam', version: spam.model.version, inputs: cycle(spam.rows, 5000) }, 5000),
      raw: null,
    },
    {
      name: `fashion@${fashion.model.version}`,
      submit: jsonSubmit({ model: 'fashion', version: fashion.model.version, inputs: cycle(fashion.rows, 2000) }, 2000),
      raw: storedBytesPerRow(fashion.model.manifest),
    },
  ];
  const settle = async () => {
    await sleep(300);
    return usedMemory(redis);
  };
  const one = jsonSubmit({ model: 'iris', version: iris.model.version, inputs: [iris.rows[0]] }, 1);
  await stack.client.request('POST', one.path, { headers: one.headers, body: one.body }); // queue and limiter keys exist from here on
  const out = { perRow: {}, perQueuedJob: null };
  for (const c of cases) {
    const before = await settle();
    const answer = await stack.client.request('POST', c.submit.path, { headers: c.submit.headers, body: c.submit.body });
    if (answer.status !== 202) throw new BenchError(`memory: ${c.name} answered ${answer.status}: ${answer.body.toString().slice(0, 300)}`);
    const after = await settle();
    out.perRow[c.name] = { rows: c.submit.rows, bytesPerRow: (after - before) / c.submit.rows, rawInputBytesPerRow: c.raw };
  }
  const jobs = 2000;
  const before = await settle();
  for (let i = 0; i < jobs; i += 50)
    await Promise.all(Array.from({ length: 50 }, () => stack.client.request('POST', one.path, { headers: one.headers, body: one.body })));
  out.perQueuedJob = { jobs, bytesPerJob: ((await settle()) - before) / jobs };
  await stack.stop();
  return out;
}

const SIZES = [
  { rows: 1, jobs: 1500, inFlight: 32 },
  { rows: 100, jobs: 600, inFlight: 16 },
  { rows: 4000, jobs: 150, inFlight: 8 },
  { rows: 40_000, jobs: 24, inFlight: 4 },
  { rows: 400_000, jobs: 4, inFlight: 2 },
];

async function perJobBySize(redis, redisEnv, redisPid) {
  const stack = await startStack('size', redisEnv, WORKERS);
  const iris = golden('iris');
  const out = [];
  for (const size of SIZES) {
    const bodies = Array.from({ length: 8 }, (_, k) =>
      size.rows >= 4000
        ? ndjsonSubmit('iris', iris.model.version, ndjson(cycle(iris.rows, iris.rows.length, k * 7), size.rows), size.rows)
        : jsonSubmit({ model: 'iris', version: iris.model.version, inputs: cycle(iris.rows, size.rows, k * 7) }, size.rows),
    );
    const pids = { api: stack.api.child.pid, workers: stack.workers.map((w) => w.child.pid) };
    const cpu = () => ({
      api: cpuSeconds(pids.api),
      workers: pids.workers.reduce((s, pid) => s + cpuSeconds(pid), 0),
      redis: cpuSeconds(redisPid),
    });
    const [statsBefore, countersBefore, cpuBefore] = [await commandStats(redis), await redisCounters(redis), cpu()];
    const result = await runJobs(stack.client, { jobs: size.jobs, inFlight: size.inFlight, submitFor: (i) => bodies[i % bodies.length] });
    await sleep(200); // finalize-batch parents and outbox clean-up of the last jobs
    const [statsAfter, countersAfter, cpuAfter] = [await commandStats(redis), await redisCounters(redis), cpu()];
    const commands = commandsPerJob(statsBefore, statsAfter, size.jobs);
    const redisCpu = countersAfter.cpu - countersBefore.cpu;
    out.push({
      rowsPerJob: size.rows,
      jobs: size.jobs,
      inFlight: size.inFlight,
      seconds: result.seconds,
      jobsPerSecond: result.jobsPerSecond,
      rowsPerSecond: result.rowsPerSecond,
      latencyP50Ms: result.latencyMs.p50,
      redisCommandsPerJob: commands.callsPerJob,
      topCommands: commands.commands.slice(0, 8).map((c) => `${c.command} ${c.callsPerJob.toFixed(1)}`),
      redisCpuMsPerJob: (redisCpu / size.jobs) * 1000,
      redisCpuUsPerRow: (redisCpu / (size.jobs * size.rows)) * 1e6,
      redisMainThreadBusy: redisCpu / result.seconds,
      redisProcessCpuBusy: (cpuAfter.redis - cpuBefore.redis) / result.seconds,
      netKbPerJob: (countersAfter.netIn - countersBefore.netIn + countersAfter.netOut - countersBefore.netOut) / size.jobs / 1024,
      apiCpuMsPerJob: ((cpuAfter.api - cpuBefore.api) / size.jobs) * 1000,
      workerCpuMsPerJob: ((cpuAfter.workers - cpuBefore.workers) / size.jobs) * 1000,
      // One Redis main thread at 100 %: an upper bound, reached only with enough API and worker cores.
      saturationJobsPerSecond: size.jobs / redisCpu,
      saturationRowsPerSecond: (size.jobs * size.rows) / redisCpu,
    });
    say(
      `  ${size.rows} rows/job: ${result.jobsPerSecond.toFixed(1)} jobs/s, Redis ${((redisCpu / size.jobs) * 1000).toFixed(3)} ` +
        `ms CPU and ${commands.callsPerJob.toFixed(1)} commands per job`,
    );
    await deleteKeys(redis, `${PREFIX}*`); // start each size clean
    await sleep(300);
  }
  await stack.stop();
  return out;
}

// ---------------------------------------------------------------------------------------------

async function startCluster() {
  const nodes = [];
  for (let i = 0; i < 3; i++) {
    let port;
    do port = 20_000 + Math.floor(Math.random() * 30_000);
    while (!(await portsFree(port, port + 10_000)));
    nodes.push(await startRedis(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`]));
  }
  const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
  execFileSync('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-yes'], { stdio: 'ignore', timeout: 30_000 });
  const clients = nodes.map((n) => new Redis({ port: n.port, host: '127.0.0.1' }));
  for (const client of clients) while (!/cluster_state:ok/.test(await client.cluster('INFO'))) await sleep(100);
  return {
    nodes,
    clients,
    list: addresses.join(','),
    async stop() {
      for (const c of clients) c.disconnect();
      await Promise.all(nodes.map((n) => stop(n)));
    },
  };
}

async function portsFree(...ports) {
  for (const port of ports) {
    const free = await new Promise((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!free) return false;
  }
  return true;
}

async function clusterSpread() {
  const cluster = await startCluster();
  const iris = golden('iris');
  const out = [];
  try {
    for (const shards of [1, 3]) {
      const stack = await startStack(`cluster${shards}`, { REDIS_CLUSTER_NODES: cluster.list }, WORKERS, { QUEUE_SHARDS: String(shards) });
      const bodies = Array.from({ length: 8 }, (_, k) =>
        jsonSubmit({ model: 'iris', version: iris.model.version, inputs: [iris.rows[k]] }, 1),
      );
      const before = await Promise.all(cluster.clients.map(redisCounters));
      const result = await runJobs(stack.client, { jobs: 1500, inFlight: 32, submitFor: (i) => bodies[i % bodies.length] });
      const after = await Promise.all(cluster.clients.map(redisCounters));
      const cpu = after.map((a, i) => a.cpu - before[i].cpu);
      const total = cpu.reduce((s, c) => s + c, 0);
      out.push({
        queueShards: shards,
        jobsPerSecond: result.jobsPerSecond,
        redisCpuMsPerJobAllMasters: (total / 1500) * 1000,
        cpuSharePerMaster: cpu.map((c) => c / total),
        busiestMasterSaturationJobsPerSecond: 1500 / Math.max(...cpu),
      });
      say(
        `  ${shards} queue shard(s): ${result.jobsPerSecond.toFixed(1)} jobs/s; Redis CPU share per master ` +
          `${cpu.map((c) => `${((c / total) * 100).toFixed(0)}%`).join(' / ')}`,
      );
      await stack.stop();
    }
  } finally {
    await cluster.stop();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

async function main() {
  mkdirSync(resultsDir, { recursive: true });
  const port = await freePort();
  const redisEntry = await startRedis(port);
  const redis = new Redis({ port, host: '127.0.0.1' });
  const redisEnv = { REDIS_URL: `redis://127.0.0.1:${port}` };
  const report = {
    at: new Date().toISOString(),
    machine: { cpus: os.availableParallelism(), redis: execFileSync('redis-server', ['--version']).toString().trim() },
    workers: WORKERS,
  };
  say('sizing: 1. Redis memory per queued row (API only, nothing runs)');
  report.memory = await memoryPerRow(redis, redisEnv);
  for (const [name, m] of Object.entries(report.memory.perRow)) say(`  ${name}: ${m.bytesPerRow.toFixed(1)} bytes per queued row`);
  say(`  a queued 1-row job: ${report.memory.perQueuedJob.bytesPerJob.toFixed(0)} bytes`);
  await deleteKeys(redis, `${PREFIX}*`);
  say(`sizing: 2. Redis work per job by job size (iris, ${WORKERS} workers)`);
  report.bySize = await perJobBySize(redis, redisEnv, redisEntry.child.pid);
  if (CLUSTER) {
    say('sizing: 3. 1-row jobs on a 3-master Redis Cluster');
    report.cluster = await clusterSpread();
  }
  redis.disconnect();
  await stopAll();
  writeFileSync(`${logBase}.json`, `${JSON.stringify(report, null, 2)}\n`);
  say(
    '\n| rows/job | jobs/s here | Redis cmds/job | Redis CPU ms/job | Redis µs/row | Redis busy | net KB/job | API CPU ms/job | ' +
      'worker CPU ms/job | Redis-bound jobs/s | Redis-bound rows/s |',
  );
  say('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of report.bySize) {
    say(
      `| ${r.rowsPerJob} | ${r.jobsPerSecond.toFixed(1)} | ${r.redisCommandsPerJob.toFixed(1)} | ` +
        `${r.redisCpuMsPerJob.toFixed(3)} | ${r.redisCpuUsPerRow.toFixed(2)} | ${(r.redisMainThreadBusy * 100).toFixed(0)} % | ` +
        `${r.netKbPerJob.toFixed(1)} | ${r.apiCpuMsPerJob.toFixed(2)} | ${r.workerCpuMsPerJob.toFixed(2)} | ` +
        `${r.saturationJobsPerSecond.toFixed(0)} | ${r.saturationRowsPerSecond.toFixed(0)} |`,
    );
  }
  say(`\nsizing: written ${logBase}.json`);
}

main().then(
  () => process.exit(0),
  async (error) => {
    say(`sizing: ${error instanceof Error ? error.message : String(error)}`);
    await stopAll();
    process.exit(1);
  },
);
