// `npm start`: the API (API_PROCESSES processes sharing PORT; the API's own cluster primary
// forks and supervises them), WORKERS worker processes and one scheduler process (schedule
// ticks; idle without SCHEDULES_ROOT) together, on the configured Redis. When nothing answers at
// a local REDIS_URL and redis-server is installed, a private Redis is started for the session
// (in-memory, stopped on exit). Crashed workers and a crashed scheduler are restarted.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { redisAnswers } from './redis-probe.mjs';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { loadConfig } = require(path.join(root, 'shared', 'dist', 'config.js'));

const log = (message, extra = {}) => process.stdout.write(`${JSON.stringify({ level: 'info', service: 'start', message, ...extra })}\n`);
const fail = (message) => {
  process.stderr.write(`onnx-batch start: ${message}\n`);
  process.exit(1);
};

let config;
try {
  config = loadConfig();
} catch (error) {
  fail(error.message);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const children = new Set();
let privateRedis = null;
let redisDir = null;
let stopping = false;

async function ensureRedis() {
  // Sentinel, Cluster and TLS set-ups are the operator's: the services connect (and retry) themselves.
  if (config.REDIS_CLUSTER_NODES || config.REDIS_SENTINELS || config.REDIS_URL.startsWith('rediss://')) return;
  const url = new URL(config.REDIS_URL);
  const host = url.hostname || '127.0.0.1';
  const port = Number(url.port || 6379);
  if (await redisAnswers(host, port)) {
    log('redis answers', { url: `${url.protocol}//${host}:${port}` });
    return;
  }
  const local = ['127.0.0.1', 'localhost', '::1', '[::1]'].includes(host);
  const installed = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!local || !installed) {
    fail(
      `nothing answers at ${config.REDIS_URL}. Start Redis (e.g. 'apt-get install redis-server', ` +
        `'docker run -p 6379:6379 redis:7', or 'docker compose up redis') or point REDIS_URL at one.`,
    );
  }
  redisDir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-redis-'));
  privateRedis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', redisDir],
    {
      stdio: 'ignore',
    },
  );
  log('started a private redis-server for this session', { port, pid: privateRedis.pid });
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers('127.0.0.1', port)) return;
    await sleep(100);
  }
  fail('the private redis-server did not start');
}

function run(name, script, restart, env = {}) {
  const child = spawn(process.execPath, [path.join(root, script)], { stdio: 'inherit', env: { ...process.env, ...env } });
  children.add(child);
  child.on('exit', (code, signal) => {
    children.delete(child);
    if (stopping) return;
    if (restart) {
      log(`${name} exited; restarting it`, { code, signal });
      setTimeout(() => run(name, script, restart, env), 1000);
    } else {
      log(`${name} exited; stopping everything`, { code, signal });
      void stop(code ?? 1);
    }
  });
}

async function stop(exitCode) {
  if (stopping) return;
  stopping = true;
  for (const child of children) child.kill('SIGTERM');
  // The scheduler may take its own, longer grace to finish a results file it is writing.
  const deadline = Date.now() + Math.max(config.SHUTDOWN_GRACE_MS, config.SCHEDULER_SHUTDOWN_GRACE_MS) + 5000;
  while (children.size > 0 && Date.now() < deadline) await sleep(100);
  for (const child of children) child.kill('SIGKILL');
  if (privateRedis) {
    privateRedis.kill('SIGTERM');
    await new Promise((r) => privateRedis.once('exit', r));
    rmSync(redisDir, { recursive: true, force: true });
  }
  process.exit(exitCode);
}

process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

await ensureRedis();
run('api', 'api/dist/main.js', false);
// Each worker on this host gets its own metrics port: METRICS_PORT, METRICS_PORT + 1, …
for (let i = 0; i < config.WORKERS; i++) {
  run(`worker ${i + 1}`, 'worker/dist/main.js', true, config.METRICS_PORT > 0 ? { METRICS_PORT: String(config.METRICS_PORT + i) } : {});
}
// Ticks of built-in schedules run here, not in the API (a tick can take hours).
run('scheduler', 'scheduler/dist/main.js', true);
log('onnx-batch is starting', {
  api: `http://${config.HOST}:${config.PORT}`,
  apiProcesses: config.API_PROCESSES,
  workers: config.WORKERS,
  schedulers: 1,
  schedulesRoot: config.SCHEDULES_ROOT || null,
});
