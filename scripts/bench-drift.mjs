// The cost of drift statistics, for `npm run bench` (BENCH_ONLY=drift runs it alone; docs/drift.md):
// - W2 (and a spam workload, whose OOV tokenizer is the dearest statistic) with the worker processes
//   restarted with DRIFT_SAMPLE_RATE=0 (off) and =1 (on), alternating, BENCH_DRIFT_ROUNDS times each
//   (BENCH_DRIFT_CASES=W2 or =spam runs one of them);
// - what reading a 24-hour window costs the API (≤ 83 hashes) against reading its 1440 minute buckets.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createRequire } from 'node:module';
import { jsonSubmit, runJobs } from './bench-client.mjs';
import { deleteKeys } from './bench-procs.mjs';
import { goldenInputs, loadDefaultModel } from './bench-raw.mjs';

const SPAM_JOBS = 10;
const SPAM_JOB_ROWS = 2000;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Sum of the `rows` field over every hour bucket of a model's drift counts (what the workers counted). */
async function rowsCounted(redis, prefix, model) {
  let total = 0;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:drift:{${model}}:*:h:*`, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) total += Number((await redis.hget(key, 'rows')) ?? 0);
  } while (cursor !== '0');
  return total;
}

/**
 * Runs W2 and the spam workload with drift statistics off and on. `ctx` comes from bench.mjs:
 * { say, root, workers (how many), restartWorkers(tag, extraEnv), workload(id, description, model, spec), client, redis, prefix,
 *   w2: [description, model, spec] }.
 */
export async function benchDrift(ctx) {
  const { say, redis, prefix } = ctx;
  const rounds = Number(process.env.BENCH_DRIFT_ROUNDS || 2);
  const count = ctx.workers;
  const spam = loadDefaultModel(path.join(ctx.root, 'models'), 'spam');
  const texts = goldenInputs(spam);
  const spamSubmit = jsonSubmit(
    { model: 'spam', version: spam.version, inputs: Array.from({ length: SPAM_JOB_ROWS }, (_, i) => texts[i % texts.length]) },
    SPAM_JOB_ROWS,
  );
  const only = process.env.BENCH_DRIFT_CASES ? new Set(process.env.BENCH_DRIFT_CASES.split(',')) : null;
  const cases = [
    { id: 'W2', description: ctx.w2[0], model: ctx.w2[1], spec: ctx.w2[2], name: ctx.w2[1].name },
    {
      id: 'spam',
      description: `${SPAM_JOBS} jobs × ${SPAM_JOB_ROWS} spam texts (golden, cycled; JSON), 2 in flight`,
      model: spam,
      spec: { jobs: SPAM_JOBS, inFlight: 2, submitFor: () => spamSubmit },
      name: 'spam',
    },
  ].filter((c) => !only || only.has(c.id));
  let generation = 0;

  /** Replaces every worker process by one started with DRIFT_SAMPLE_RATE = rate, and warms them up. */
  const restart = async (rate) => {
    generation++;
    await ctx.restartWorkers(`drift${rate}-${generation}`, { DRIFT_SAMPLE_RATE: String(rate) });
    // Sessions, JIT and the threads' baselines before measuring.
    for (const c of cases) await runJobs(ctx.client, { jobs: 4, inFlight: 2, submitFor: c.spec.submitFor });
  };

  const runs = [];
  for (let round = 0; round < rounds; round++) {
    for (const mode of round % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
      say(
        `bench: drift ${mode}, round ${round + 1} of ${rounds}: restarting ${count} workers with ` +
          `DRIFT_SAMPLE_RATE=${mode === 'on' ? 1 : 0}…`,
      );
      await restart(mode === 'on' ? 1 : 0);
      for (const c of cases) {
        await sleep(1500); // the warm-up's counts are flushed
        const before = await rowsCounted(redis, prefix, c.name);
        const w = await ctx.workload(`${c.id}-drift-${mode}`, c.description, c.model, c.spec);
        await sleep(1500);
        const counted = (await rowsCounted(redis, prefix, c.name)) - before;
        const cpu = w.cpuSeconds;
        runs.push({
          case: c.id,
          mode,
          round: round + 1,
          rowsPerSecond: w.rowsPerSecond,
          workerCpuMsPer1000Rows: (cpu.workers * 1e6) / w.rows,
          serviceCpuMsPer1000Rows: ((cpu.api + cpu.workers + cpu.redis + cpu.benchClient) * 1e6) / w.rows,
          rows: w.rows,
          rowsCounted: counted,
          othersCpu: w.cpuUtilisation.others,
          p50Ms: w.latencyMs.p50,
        });
        say(
          `bench:   ${c.id} drift ${mode}: ${Math.round(w.rowsPerSecond).toLocaleString('en-US')} rows/s, workers ` +
            `${((w.cpuSeconds.workers * 1e6) / w.rows).toFixed(1)} CPU ms per 1000 rows, ${counted.toLocaleString('en-US')} rows counted`,
        );
      }
    }
  }
  const summary = cases.map((c) => {
    const of = (mode, key) => median(runs.filter((r) => r.case === c.id && r.mode === mode).map((r) => r[key]));
    const off = of('off', 'rowsPerSecond');
    const on = of('on', 'rowsPerSecond');
    // Each round runs off and on back to back: their ratio is less exposed to the machine's other load.
    const paired = Array.from({ length: rounds }, (_, r) => {
      const [a, b] = ['off', 'on'].map((mode) => runs.find((x) => x.case === c.id && x.mode === mode && x.round === r + 1)?.rowsPerSecond);
      return 1 - b / a;
    });
    return {
      case: c.id,
      rowsPerSecondOff: off,
      rowsPerSecondOn: on,
      throughputLoss: 1 - on / off,
      pairedLossMedian: median(paired),
      othersCpuMedian: median(runs.filter((r) => r.case === c.id).map((r) => r.othersCpu)),
      workerCpuMsPer1000RowsOff: of('off', 'workerCpuMsPer1000Rows'),
      workerCpuMsPer1000RowsOn: of('on', 'workerCpuMsPer1000Rows'),
      // What the rows/s of a CPU-bound run would lose: the workers' extra CPU per row over all the CPU a row costs (API, workers, Redis,
      // client).
      projectedLoss: (of('on', 'workerCpuMsPer1000Rows') - of('off', 'workerCpuMsPer1000Rows')) / of('off', 'serviceCpuMsPer1000Rows'),
    };
  });
  return { rounds, runs, summary, read24h: await measureWindowReads(ctx) };
}

/**
 * Fills 24 hours of minute and hour buckets of a made-up version (iris' baseline layout, every
 * bin non-zero) and times readDriftCounts over each window against one pipeline of the 1440
 * minute buckets a 24-hour window would need without hour buckets.
 */
async function measureWindowReads(ctx) {
  const require = createRequire(path.join(ctx.root, 'package.json'));
  const shared = require('@onnx-batch/shared');
  const { DriftRecorder, RedisKeys, countLayout, loadBaseline, readDriftCounts } = shared;
  const dir = path.join(ctx.root, 'models', 'iris', '2');
  const baseline = await loadBaseline(dir, JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')));
  const keys = new RedisKeys(`${ctx.prefix}-driftread`);
  const now = Date.now();
  let clock = now;
  const recorder = new DriftRecorder(ctx.redis, keys, { retentionSeconds: 48 * 3600, flushEveryMs: 3_600_000, now: () => clock });
  const counts = new Uint32Array(countLayout(baseline).fields.length).fill(7);
  for (let m = 0; m < 1440; m++) {
    clock = now - m * 60_000;
    recorder.add('iris', '999', baseline, counts);
    if (m % 60 === 59) await recorder.flush();
  }
  await recorder.close();
  const time = async (fn, reps = 30) => {
    for (let i = 0; i < 5; i++) await fn();
    const samples = [];
    for (let i = 0; i < reps; i++) {
      const start = process.hrtime.bigint();
      await fn();
      samples.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    return median(samples);
  };
  const out = {};
  for (const window of ['15m', '1h', '24h']) {
    let buckets = 0;
    out[window] = {
      ms: await time(async () => {
        const read = await readDriftCounts(ctx.redis, keys, 'iris', '999', baseline.digest, window, now);
        buckets = read.sums.get('rows') / 7;
      }),
      minutesSummed: buckets,
    };
  }
  const minute = Math.floor(now / 60_000);
  out.minuteBuckets1440 = {
    ms: await time(async () => {
      const pipeline = ctx.redis.pipeline();
      for (let m = 0; m < 1440; m++) pipeline.hgetall(keys.driftBucket('iris', '999', baseline.digest, 'm', minute - m));
      await pipeline.exec();
    }),
  };
  out.fieldsPerBucket = countLayout(baseline).fields.length;
  await deleteKeys(ctx.redis, `${ctx.prefix}-driftread:*`);
  return out;
}

/** The drift part of the bench's printout. */
export function printDrift(drift, say, table, num) {
  if (!drift) return;
  say(`Drift statistics off (DRIFT_SAMPLE_RATE=0) and on (=1), workers restarted for each, median of ${drift.rounds} runs each:`);
  say(
    table(
      [
        'workload',
        'rows/s off',
        'rows/s on',
        'loss',
        'loss (median of rounds)',
        'worker CPU ms/1000 rows off',
        'on',
        'CPU-bound loss',
        'CPU % other',
      ],
      drift.summary.map((s) => [
        s.case,
        num(s.rowsPerSecondOff),
        num(s.rowsPerSecondOn),
        `${(s.throughputLoss * 100).toFixed(1)}%`,
        `${(s.pairedLossMedian * 100).toFixed(1)}%`,
        num(s.workerCpuMsPer1000RowsOff, 2),
        num(s.workerCpuMsPer1000RowsOn, 2),
        `${(s.projectedLoss * 100).toFixed(1)}%`,
        Math.round(s.othersCpuMedian * 100),
      ]),
    ),
  );
  const w2 = drift.summary.find((s) => s.case === 'W2');
  if (w2)
    say(
      `  ${w2.throughputLoss <= 0.05 ? 'met   ' : 'MISSED'} W2 loses at most 5 % with drift on: measured ` +
        `${(w2.throughputLoss * 100).toFixed(1)} % (medians; ${(w2.pairedLossMedian * 100).toFixed(1)} % by rounds; ` +
        `${(w2.projectedLoss * 100).toFixed(1)} % from the workers' extra CPU per row)`,
    );
  if (drift.summary.some((s) => s.othersCpuMedian > 0.2))
    say('WARNING: other processes used more than 20% of a core during the drift runs; compare worker CPU per row rather than rows/s.');
  const r = drift.read24h;
  say(
    `Drift window reads (${r.fieldsPerBucket} fields a bucket): 15m ${num(r['15m'].ms, 2)} ms, 1h ${num(r['1h'].ms, 2)} ms, 24h ` +
      `${num(r['24h'].ms, 2)} ms` +
      ` (hour buckets + minutes); the 1440 minute buckets of 24h in one pipeline: ${num(r.minuteBuckets1440.ms, 2)} ms`,
  );
  say('');
}
