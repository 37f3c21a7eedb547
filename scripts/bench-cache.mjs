// W6, the prediction cache, for `npm run bench` (BENCH_ONLY=W6 runs it alone; README "Prediction
// cache"): the worker processes are restarted with PREDICTION_CACHE_MODELS=iris and an API of
// its own is started with it too; then the synchronous predict of one iris row, one request at a
// time:
// - W6miss: every request a row not seen before (each runs as a job: queue, worker, result);
// - W6: the same row again and again, after it has been cached once (answered from Redis).
// Every W6 answer must say `cached: true`, or the run fails: a figure for misses counted as hits
// would be a lie.
import path from 'node:path';
import { Client, BenchError, latencySummary, waitReady } from './bench-client.mjs';
import { commandStats, commandsPerJob, cpuSeconds, freePort, processTree, startNode, stop } from './bench-procs.mjs';

const MISSES = 300;
const HITS = 2000;
const WARM_UP = 200;

/**
 * `ctx` from bench.mjs: { say, root, workers (how many), restartWorkers(tag, extraEnv) → the new worker entries, serviceEnv(extra),
 * logBase, nodeArgs, redis, version (iris's default) }.
 */
export async function benchCache(ctx) {
  const { say, redis } = ctx;
  const cacheEnv = { PREDICTION_CACHE_MODELS: 'iris' };
  say(`bench: W6: restarting ${ctx.workers} workers with PREDICTION_CACHE_MODELS=iris…`);
  const workers = await ctx.restartWorkers('cache', cacheEnv);

  const port = await freePort();
  const api = startNode(
    'cache-api',
    path.join(ctx.root, 'api/dist/main.js'),
    ctx.serviceEnv({ ...cacheEnv, PORT: String(port) }),
    `${ctx.logBase}.cache-api.log`,
    ctx.nodeArgs,
  );
  const client = new Client(`http://127.0.0.1:${port}`, 8);
  try {
    await waitReady(client, 'the API with the prediction cache', { logs: `${ctx.logBase}.*.log` });
    const predictPath = `/v1/models/iris/versions/${encodeURIComponent(ctx.version)}/predict`;
    const bodyOf = (row) => {
      const body = Buffer.from(JSON.stringify({ inputs: [row] }));
      return { headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body };
    };
    // Distinct rows (i < 10 000): sepal and petal width step by 0.01 cm, within the manifest's bounds.
    const freshRow = (i) => [5.1, Number((2 + (i % 100) / 100).toFixed(2)), 1.4, Number((0.2 + Math.floor(i / 100) / 100).toFixed(2))];
    const repeated = bodyOf([5.9, 3.0, 5.1, 1.8]);

    const ask = async (request) => {
      const answer = await client.request('POST', predictPath, request);
      if (answer.status !== 200)
        throw new BenchError(`W6: predict answered ${answer.status}: ${answer.body.toString('utf8').slice(0, 300)}`);
      const document = JSON.parse(answer.body.toString('utf8'));
      if (document.status !== 'completed' || document.results?.length !== 1)
        throw new BenchError(`W6: predict answered ${answer.body.toString('utf8').slice(0, 300)}`);
      return document;
    };

    // Warm-up (sessions, JIT) with rows of their own, then the row W6 repeats, until it is cached.
    for (let i = 0; i < WARM_UP; i++) await ask(bodyOf(freshRow(MISSES + i)));
    const deadline = Date.now() + 10_000;
    while ((await ask(repeated)).cached !== true) {
      if (Date.now() > deadline) throw new BenchError('W6: the repeated row was not answered from the cache within 10 s');
    }
    for (let i = 0; i < WARM_UP; i++) await ask(repeated);

    const measure = async (id, description, requestFor, requests, expectCached) => {
      say(`bench: ${id}: ${description}…`);
      const apiPids = processTree(api.child.pid);
      const cpu = () => apiPids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
      const workersCpu = () => workers.reduce((sum, w) => sum + cpuSeconds(w.child.pid), 0);
      const commandsBefore = await commandStats(redis);
      const [apiBefore, workersBefore] = [cpu(), workersCpu()];
      const latencies = new Float64Array(requests);
      let cached = 0;
      const started = performance.now();
      for (let i = 0; i < requests; i++) {
        const t0 = performance.now();
        const document = await ask(requestFor(i));
        latencies[i] = performance.now() - t0;
        if (document.cached === true) cached++;
      }
      const seconds = (performance.now() - started) / 1000;
      const commands = commandsPerJob(commandsBefore, await commandStats(redis), requests);
      if (expectCached && cached !== requests)
        throw new BenchError(`${id}: ${requests - cached} of ${requests} answers were not from the cache`);
      if (!expectCached && cached !== 0) throw new BenchError(`${id}: ${cached} of ${requests} fresh rows were answered from the cache`);
      const sorted = Array.from(latencies).sort((a, b) => a - b);
      const result = {
        id,
        description,
        requests,
        cached,
        seconds,
        requestsPerSecond: requests / seconds,
        latencyMs: latencySummary(sorted),
        apiCpuMsPerRequest: ((cpu() - apiBefore) * 1000) / requests,
        workersCpuMsPerRequest: ((workersCpu() - workersBefore) * 1000) / requests,
        redisCommandsPerRequest: commands.callsPerJob,
        redisCommands: commands.commands,
      };
      say(
        `bench:   p50 ${result.latencyMs.p50.toFixed(3)} ms, p99 ${result.latencyMs.p99.toFixed(3)} ms, ` +
          `${Math.round(result.requestsPerSecond)} requests/s, ${result.redisCommandsPerRequest.toFixed(1)} Redis commands/request`,
      );
      return result;
    };

    const miss = await measure(
      'W6miss',
      `${MISSES} sync predicts of 1 iris row never seen before, one at a time (each runs as a job)`,
      (i) => bodyOf(freshRow(i)),
      MISSES,
      false,
    );
    const hit = await measure('W6', `${HITS} sync predicts of the same iris row, one at a time (cache hits)`, () => repeated, HITS, true);
    return { model: `iris@${ctx.version}`, miss, hit };
  } finally {
    client.close();
    await stop(api);
  }
}

export function printCache(cache, say, table, num) {
  if (!cache) return;
  say(`Prediction cache (PREDICTION_CACHE_MODELS=iris; POST /v1/models/iris/versions/…/predict, 1 row, one request at a time):`);
  say(
    table(
      [
        'workload',
        'requests',
        'from cache',
        'p50 ms',
        'p95 ms',
        'p99 ms',
        'requests/s',
        'API CPU ms/req',
        'workers CPU ms/req',
        'Redis cmd/req',
      ],
      [cache.miss, cache.hit].map((w) => [
        w.id,
        w.requests,
        w.cached,
        num(w.latencyMs.p50, 3),
        num(w.latencyMs.p95, 3),
        num(w.latencyMs.p99, 3),
        num(w.requestsPerSecond),
        num(w.apiCpuMsPerRequest, 3),
        num(w.workersCpuMsPerRequest, 3),
        num(w.redisCommandsPerRequest, 1),
      ]),
    ),
  );
  say(`  a hit answers ${num(cache.miss.latencyMs.p50 / cache.hit.latencyMs.p50, 1)}× faster at the median than running the row as a job`);
  say('');
}
