import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { tableFromIPC, tableToIPC, Table, vectorFromArray, Float64, Utf8 } from 'apache-arrow';
import { Queue, type Job } from 'bullmq';
import { parse } from 'csv-parse/sync';
import request from 'supertest';
import { JobName, QueueName } from '@onnx-batch/shared';
import { dropPrefix, newRedis, testEnv, type TestEnv } from '../helpers/env';
import { loadGolden } from '../helpers/golden';
import { spawnApi, spawnScheduler, spawnService, spawnWorker, type Spawned } from '../helpers/processes';

const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const READER = 'reader-key-0123456789abcdef';
const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;
const EVERY_2_SECONDS = '*/2 * * * * *';
/** Fires on 1 January only: a test adds the one tick it wants to the queue itself. */
const YEARLY = '0 0 1 1 *';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Summary {
  schedule: string;
  runId: string;
  tick: string;
  startedAt: string;
  finishedAt: string;
  status: string;
  files: { input: string; output: string | null; jobId: string | null; rows: number; failedRows: number; status: string }[];
}

/** The iris golden rows as a CSV with an `id` column. */
function irisCsv(): { csv: string; ids: string[]; labels: string[] } {
  const golden = loadGolden('iris', '1');
  const ids = golden.inputs.map((_, i) => `flower-${String(i).padStart(3, '0')}`);
  const lines = golden.inputs.map((row, i) => [ids[i], ...FEATURES.map((f) => String(row[f]))].join(','));
  return { csv: `${['id', ...FEATURES].join(',')}\n${lines.join('\n')}\n`, ids, labels: golden.labels ?? [] };
}

function summaries(dir: string): Summary[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.summary.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as Summary);
}

/** A tick as part of file names and run ids: `20261125T093002Z`. */
const stamp = (tick: number): string => new Date(tick).toISOString().replace(/[-:]/g, '').replace('.000Z', 'Z');

/** The run ids the processes logged with `message`, for one schedule. */
function runsLogged(procs: Spawned[], schedule: string, message = 'schedule run finished'): string[] {
  return procs.flatMap((p) =>
    p.output.flatMap((line) => {
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        return parsed.message === message && parsed.schedule === schedule ? [String(parsed.runId)] : [];
      } catch {
        return [];
      }
    }),
  );
}

async function until<T>(what: string, probe: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('built-in schedules (two API processes, two scheduler processes, one worker)', () => {
  let env: TestEnv;
  let root: string;
  let outside: string;
  let apis: { proc: Spawned; url: string }[] = [];
  let schedulers: Spawned[] = [];
  let worker: Spawned;
  const iris = irisCsv();

  /** A fresh input directory holding iris.csv and a fresh output directory, relative to the root. */
  const dirs = (label: string): { input: string; output: string } => {
    mkdirSync(path.join(root, label, 'in'), { recursive: true });
    mkdirSync(path.join(root, label, 'out'), { recursive: true });
    writeFileSync(path.join(root, label, 'in', 'iris.csv'), iris.csv);
    return { input: `${label}/in`, output: `${label}/out` };
  };

  const body = (name: string, where: { input: string; output: string }, extra: Record<string, unknown> = {}) => ({
    name,
    cron: '0 3 * * *',
    timezone: 'Europe/Berlin',
    model: 'iris',
    version: '1',
    input: { dir: where.input, pattern: '*.csv' },
    output: { dir: where.output, format: 'csv' },
    ...extra,
  });

  const api = (i = 0) => request((apis[i] ?? apis[0])?.url ?? '');

  beforeAll(async () => {
    root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-schedules-')));
    outside = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-outside-')));
    symlinkSync(outside, path.join(root, 'escape'));
    env = testEnv({
      SCHEDULES_ROOT: root,
      API_KEYS: `acme:${ACME},globex:${GLOBEX},acme:${READER}:read`,
      RATE_LIMIT_PER_MINUTE: '0',
      CHUNK_SIZE: '64',
      STALLED_INTERVAL_MS: '5000',
      // The shortest lock allowed, so a tick whose scheduler was killed is taken over within the test.
      SCHEDULER_LOCK_DURATION_MS: '10000',
      SCHEDULER_STALLED_INTERVAL_MS: '1000',
    });
    [apis, schedulers, worker] = await Promise.all([
      Promise.all([spawnApi(env), spawnApi(env)]),
      Promise.all([spawnScheduler(env), spawnScheduler(env)]),
      spawnWorker(env),
    ]);
  });

  afterAll(async () => {
    await Promise.all([...apis.map((a) => a.proc.stop()), ...schedulers.map((s) => s.stop()), worker?.stop()]);
    const redis = newRedis();
    await dropPrefix(redis, env.REDIS_PREFIX);
    await redis.quit();
    rmSync(root, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('when a schedule is created, then either API process reads, lists, replaces and deletes it', async () => {
    const where = dirs('crud');

    const created = await api(0).post('/v1/schedules').set('x-api-key', ACME).send(body('nightly', where));
    const read = await api(1).get('/v1/schedules/nightly').set('x-api-key', ACME);
    const listed = await api(1).get('/v1/schedules').set('x-api-key', READER);
    const replaced = await api(1)
      .put('/v1/schedules/nightly')
      .set('x-api-key', ACME)
      .send({ ...body('nightly', where), cron: '30 4 * * 1-5', version: 2 });
    const reread = await api(0).get('/v1/schedules/nightly').set('x-api-key', ACME);
    const runs = await api(0).get('/v1/schedules/nightly/runs').set('x-api-key', ACME);
    const deleted = await api(0).delete('/v1/schedules/nightly').set('x-api-key', ACME);
    const gone = await api(1).get('/v1/schedules/nightly').set('x-api-key', ACME);

    expect(created.status).toBe(201);
    expect(created.headers.location).toBe('/v1/schedules/nightly');
    expect(created.body).toMatchObject({
      name: 'nightly',
      cron: '0 3 * * *',
      timezone: 'Europe/Berlin',
      model: 'iris',
      version: '1',
      input: { dir: 'crud/in', pattern: '*.csv' },
    });
    expect(Date.parse(String(created.body.nextRunAt))).toBeGreaterThan(Date.now());
    expect(read.body).toEqual(created.body);
    expect((listed.body.schedules as { name: string }[]).map((s) => s.name)).toEqual(['nightly']);
    expect(replaced.status).toBe(200);
    expect(reread.body).toMatchObject({ cron: '30 4 * * 1-5', version: '2', createdAt: created.body.createdAt });
    expect(runs.body).toEqual({ runs: [] });
    expect(deleted.status).toBe(204);
    expect(gone.status).toBe(404);
    expect(gone.body.code).toBe('OB_ERR_SCHEDULE_NOT_FOUND');
  });

  it('when the name is taken, then 409; when a read-only key creates, then 403', async () => {
    const where = dirs('taken');
    await api().post('/v1/schedules').set('x-api-key', ACME).send(body('taken', where));

    const again = await api(1).post('/v1/schedules').set('x-api-key', ACME).send(body('taken', where));
    const reader = await api().post('/v1/schedules').set('x-api-key', READER).send(body('other', where));

    expect(again.status).toBe(409);
    expect(again.body.code).toBe('OB_ERR_SCHEDULE_EXISTS');
    expect(reader.status).toBe(403);
    await api().delete('/v1/schedules/taken').set('x-api-key', ACME);
  });

  it.each([
    ['a cron of 4 fields', { cron: '* * * *' }, 'cron'],
    ['a cron value out of range', { cron: '61 * * * *' }, 'cron'],
    ['a cron that is not one', { cron: 'every day' }, 'cron'],
    ['an unknown time zone', { timezone: 'Mars/Olympus_Mons' }, 'timezone'],
    ['an unknown output format', { output: { dir: 'fields/out', format: 'xml' } }, 'output.format'],
    ['a pattern with a directory part', { input: { dir: 'fields/in', pattern: '../*.csv' } }, 'input.pattern'],
    ['a name with a slash', { name: 'a/b' }, 'name'],
    ['an unknown field', { retries: 3 }, 'retries'],
  ])('when the body has %s, then 400 problem+json names the field', async (_what, change, field) => {
    const where = dirs('fields');

    const response = await api()
      .post('/v1/schedules')
      .set('x-api-key', ACME)
      .send({ ...body('fields', where), ...change });

    expect(response.status).toBe(400);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.body.code).toBe('OB_ERR_INVALID_REQUEST');
    expect(response.body.errors[0].field).toBe(field);
  });

  it('when a required field is missing, then 400 names it', async () => {
    const { cron: _cron, ...rest } = body('nocron', dirs('nocron'));

    const response = await api().post('/v1/schedules').set('x-api-key', ACME).send(rest);

    expect(response.status).toBe(400);
    expect(response.body.errors[0].field).toBe('cron');
  });

  it('when the model or its version is unknown, then 404', async () => {
    const where = dirs('models');

    const model = await api()
      .post('/v1/schedules')
      .set('x-api-key', ACME)
      .send(body('m', where, { model: 'no-such-model' }));
    const version = await api()
      .post('/v1/schedules')
      .set('x-api-key', ACME)
      .send(body('m', where, { version: '99' }));

    expect(model.status).toBe(404);
    expect(model.body.code).toBe('OB_ERR_MODEL_NOT_FOUND');
    expect(version.status).toBe(404);
    expect(version.body.code).toBe('OB_ERR_VERSION_NOT_FOUND');
  });

  it.each([
    ['input.dir', 'climbs out with ..', { input: { dir: 'paths/in/../../..', pattern: '*.csv' } }],
    ['input.dir', 'is an absolute path outside the root', { input: { dir: os.tmpdir(), pattern: '*.csv' } }],
    ['output.dir', 'goes through a symlink that leads out', { output: { dir: 'escape', format: 'csv' } }],
    ['output.dir', 'goes through a symlink into a subdirectory outside', { output: { dir: 'escape/../escape/.', format: 'csv' } }],
    ['output.dir', 'does not exist', { output: { dir: 'paths/nowhere', format: 'csv' } }],
    ['output.dir', 'is the input directory', { output: { dir: 'paths/in', format: 'csv' } }],
  ])('when %s %s, then 400 names it and nothing is scheduled', async (field, _what, change) => {
    const where = dirs('paths');

    const response = await api()
      .post('/v1/schedules')
      .set('x-api-key', ACME)
      .send({ ...body('paths', where), ...change });
    const after = await api().get('/v1/schedules/paths').set('x-api-key', ACME);

    expect(response.status).toBe(400);
    expect(response.body.errors[0].field).toBe(field);
    expect(after.status).toBe(404);
  });

  it('when a symlink inside the root points inside it, then it is accepted', async () => {
    const where = dirs('linked');
    symlinkSync(path.join(root, 'linked', 'out'), path.join(root, 'linked-out'));

    const response = await api()
      .post('/v1/schedules')
      .set('x-api-key', ACME)
      .send(body('linked', { ...where, output: 'linked-out' }));

    expect(response.status).toBe(201);
    await api().delete('/v1/schedules/linked').set('x-api-key', ACME);
  });

  it(
    'when another tenant reads, replaces, deletes or lists a schedule, then it is answered as missing; it may use ' + 'the same name',
    async () => {
      const where = dirs('tenants');
      await api().post('/v1/schedules').set('x-api-key', ACME).send(body('mine', where));
      const missing = await api().get('/v1/schedules/never-made').set('x-api-key', GLOBEX);

      const read = await api().get('/v1/schedules/mine').set('x-api-key', GLOBEX);
      const runs = await api().get('/v1/schedules/mine/runs').set('x-api-key', GLOBEX);
      const put = await api().put('/v1/schedules/mine').set('x-api-key', GLOBEX).send(body('mine', where));
      const remove = await api().delete('/v1/schedules/mine').set('x-api-key', GLOBEX);
      const list = await api().get('/v1/schedules').set('x-api-key', GLOBEX);
      const own = await api().get('/v1/schedules/mine').set('x-api-key', ACME);
      mkdirSync(path.join(root, 'tenants', 'globex-out'));
      const sameName = await api()
        .post('/v1/schedules')
        .set('x-api-key', GLOBEX)
        .send(body('mine', { ...where, output: 'tenants/globex-out' }));

      for (const response of [read, runs, put, remove]) {
        expect(response.status).toBe(404);
        expect({ ...response.body, detail: '', instance: '' }).toEqual({ ...missing.body, detail: '', instance: '' });
      }
      expect(list.body).toEqual({ schedules: [] });
      expect(own.status).toBe(200);
      expect(sameName.status).toBe(201);
      await api().delete('/v1/schedules/mine').set('x-api-key', ACME);
      await api().delete('/v1/schedules/mine').set('x-api-key', GLOBEX);
    },
  );

  it(
    'when a schedule fires every 2 seconds, then each tick writes one results file and one summary across both scheduler ' +
      'processes, and no API process runs a tick',
    async () => {
      const where = dirs('fires');
      const outDir = path.join(root, where.output);
      await api()
        .post('/v1/schedules')
        .set('x-api-key', ACME)
        .send(body('every-2s', where, { cron: EVERY_2_SECONDS }))
        .expect(201);

      await until('4 ticks', () => summaries(outDir).length >= 4, 30_000);
      await api(1).delete('/v1/schedules/every-2s').set('x-api-key', ACME).expect(204);
      await sleep(1500); // a tick under way when it was deleted may still finish

      const written = summaries(outDir);
      const ticks = written.map((s) => Date.parse(s.tick));
      const files = readdirSync(outDir);
      const logged = runsLogged(schedulers, 'every-2s');
      expect(written.length).toBeGreaterThanOrEqual(4);
      expect(new Set(ticks).size).toBe(written.length);
      for (const tick of ticks) expect(tick % 2000).toBe(0);
      expect(logged.sort()).toEqual(written.map((s) => s.runId).sort()); // every tick ran exactly once, in one of the two processes
      expect(
        runsLogged(
          apis.map((a) => a.proc),
          'every-2s',
          'schedule run started',
        ),
      ).toEqual([]);
      expect(files.filter((f) => f.endsWith('.results.csv'))).toHaveLength(written.length);
      expect(files.filter((f) => f.startsWith('.'))).toEqual([]); // no temporary file left behind
      for (const summary of written) {
        expect(summary).toMatchObject({
          schedule: 'every-2s',
          runId: `every-2s.${new Date(summary.tick).toISOString().replace(/[-:]/g, '').replace('.000Z', 'Z')}`,
          status: 'completed',
        });
        expect(summary.files).toHaveLength(1);
        expect(summary.files[0]).toMatchObject({ input: 'fires/in/iris.csv', rows: iris.ids.length, failedRows: 0, status: 'completed' });
        const results = parse<Record<string, string>>(readFileSync(path.join(root, String(summary.files[0]?.output)), 'utf8'), {
          columns: true,
        });
        expect(results.map((r) => r.id)).toEqual(iris.ids);
        expect(results.map((r) => r.label)).toEqual(iris.labels);
      }
    },
    60_000,
  );

  it(
    'when a run of a tick is replayed after it finished, then no second set of files appears and the history ' + 'keeps one entry',
    async () => {
      const where = dirs('replay');
      const outDir = path.join(root, where.output);
      await api()
        .post('/v1/schedules')
        .set('x-api-key', ACME)
        .send(body('replay', where, { cron: EVERY_2_SECONDS, output: { dir: where.output, format: 'ndjson' } }))
        .expect(201);
      const first = await until('a first summary', () => summaries(outDir)[0]);
      await api().delete('/v1/schedules/replay').set('x-api-key', ACME).expect(204);
      await sleep(1500); // a tick under way when it was deleted may still finish
      // Re-created with a yearly pattern: the definition exists again, but no tick comes by itself.
      await api()
        .post('/v1/schedules')
        .set('x-api-key', ACME)
        .send(body('replay', where, { cron: '0 0 1 1 *' }))
        .expect(201);
      const before = readdirSync(outDir).sort();
      const connection = newRedis();
      const queue = new Queue(QueueName.Schedules, { connection, prefix: env.REDIS_PREFIX });

      // The same job id BullMQ gave the tick: as if the process running it had died and BullMQ retried it.
      await queue.add(JobName.RunSchedule, { tenant: 'acme', name: 'replay' }, { jobId: `repeat:acme/replay:${Date.parse(first.tick)}` });
      await until('the replay', () =>
        runsLogged(schedulers, 'replay', 'schedule tick had already run; its files are kept').includes(first.runId),
      );
      await queue.close();
      await connection.quit();
      const runs = await api().get('/v1/schedules/replay/runs').set('x-api-key', ACME);

      expect(readdirSync(outDir).sort()).toEqual(before);
      expect((runs.body.runs as { runId: string }[]).map((r) => r.runId)).toEqual([first.runId]);
      expect(runs.body.runs[0]).toMatchObject({ status: 'completed', summary: `replay/out/${first.runId}.summary.json` });
      await api().delete('/v1/schedules/replay').set('x-api-key', ACME);
    },
    30_000,
  );

  it('when a schedule is deleted, then it writes nothing more', async () => {
    const where = dirs('stops');
    const outDir = path.join(root, where.output);
    await api()
      .post('/v1/schedules')
      .set('x-api-key', ACME)
      .send(body('stops', where, { cron: EVERY_2_SECONDS }))
      .expect(201);
    await until('a first summary', () => summaries(outDir).length >= 1);

    await api(1).delete('/v1/schedules/stops').set('x-api-key', ACME).expect(204);
    await sleep(1500);
    const settled = readdirSync(outDir).length;
    await sleep(5000);

    expect(readdirSync(outDir)).toHaveLength(settled);
  }, 30_000);

  it('when both scheduler processes are stopped and one starts again, then the schedule still fires', async () => {
    const where = dirs('restart');
    const outDir = path.join(root, where.output);
    await api()
      .post('/v1/schedules')
      .set('x-api-key', ACME)
      .send(body('restart', where, { cron: EVERY_2_SECONDS }))
      .expect(201);
    await until('a first summary', () => summaries(outDir).length >= 1);

    const codes = await Promise.all(schedulers.map((s) => s.stop()));
    const stoppedAt = Date.now();
    schedulers = [await spawnScheduler(env)];
    const after = await until('a tick after the restart', () => summaries(outDir).find((s) => Date.parse(s.tick) > stoppedAt), 30_000);
    const runs = await api().get('/v1/schedules/restart/runs').set('x-api-key', ACME);
    await api().delete('/v1/schedules/restart').set('x-api-key', ACME).expect(204);

    expect(codes).toEqual([0, 0]);
    expect(after.status).toBe('completed');
    expect(runsLogged(schedulers, 'restart')).toContain(after.runId);
    expect((runs.body.runs as { runId: string }[]).map((r) => r.runId)).toContain(after.runId);
    expect(existsSync(path.join(root, String(after.files[0]?.output)))).toBe(true);
  }, 60_000);

  /**
   * A tick that stays under way until the test lets it end: the chunks queue is paused, so the job
   * of the tick's one file waits. The tick is added to the queue as BullMQ's job scheduler would.
   */
  const longTick = async (
    name: string,
  ): Promise<{
    outDir: string;
    tick: number;
    runId: string;
    tickJob: () => Promise<Job | undefined>;
    resume: () => Promise<void>;
    close: () => Promise<void>;
  }> => {
    const where = dirs(name);
    await api()
      .post('/v1/schedules')
      .set('x-api-key', ACME)
      .send(body(name, where, { cron: YEARLY }))
      .expect(201);
    const connection = newRedis();
    const chunks = new Queue(QueueName.Chunks, { connection, prefix: env.REDIS_PREFIX });
    const ticks = new Queue(QueueName.Schedules, { connection, prefix: env.REDIS_PREFIX });
    await chunks.pause();
    const tick = Math.floor(Date.now() / 1000) * 1000;
    const tickJobId = `repeat:acme/${name}:${tick}`;
    await ticks.add(JobName.RunSchedule, { tenant: 'acme', name }, { jobId: tickJobId });
    return {
      outDir: path.join(root, where.output),
      tick,
      runId: `${name}.${stamp(tick)}`,
      tickJob: () => ticks.getJob(tickJobId),
      resume: () => chunks.resume(),
      close: async () => {
        await chunks.resume();
        await Promise.all([chunks.close(), ticks.close()]);
        await connection.quit();
      },
    };
  };

  /** The scheduler process that submitted the tick's file, once one has. */
  const submittedBy = (runId: string): Promise<{ scheduler: Spawned; jobId: string }> =>
    until(`a scheduler submitting the file of ${runId}`, () => {
      for (const scheduler of schedulers) {
        const [line] = scheduler.lines((l) => l.message === 'schedule file submitted' && l.runId === runId);
        if (line) return { scheduler, jobId: String(line.jobId) };
      }
      return undefined;
    });

  it(
    'when the API processes are restarted (SIGTERM) in the middle of a long tick, then the scheduler goes on and writes ' + 'its results',
    async () => {
      const long = await longTick('api-restart');
      try {
        const { scheduler } = await submittedBy(long.runId);

        const codes = await Promise.all(apis.map((a) => a.proc.stop('SIGTERM')));
        apis = await Promise.all([spawnApi(env), spawnApi(env)]);
        await long.resume();
        const summary = await until('the summary', () => summaries(long.outDir)[0]);
        const runs = await api(1).get('/v1/schedules/api-restart/runs').set('x-api-key', ACME);

        expect(codes).toEqual([0, 0]);
        expect(summary).toMatchObject({ runId: long.runId, status: 'completed' });
        expect(summary.files[0]).toMatchObject({ rows: iris.ids.length, failedRows: 0, status: 'completed' });
        const results = parse<Record<string, string>>(readFileSync(path.join(root, String(summary.files[0]?.output)), 'utf8'), {
          columns: true,
        });
        expect(results.map((r) => r.label)).toEqual(iris.labels);
        expect(scheduler.child.exitCode).toBeNull(); // the same scheduler process ran the tick through
        expect(runsLogged(schedulers, 'api-restart')).toEqual([long.runId]); // once, by the scheduler that started it
        expect(runsLogged([scheduler], 'api-restart')).toEqual([long.runId]);
        expect(schedulers.flatMap((s) => s.lines((l) => String(l.message).startsWith('schedule tick interrupted')))).toEqual([]);
        expect((runs.body.runs as { runId: string; status: string }[]).map((r) => [r.runId, r.status])).toEqual([
          [long.runId, 'completed'],
        ]);
      } finally {
        await long.close();
      }
      await api().delete('/v1/schedules/api-restart').set('x-api-key', ACME).expect(204);
    },
    30_000,
  );

  it(
    'when the scheduler is stopped (SIGTERM) in the middle of a tick and started again, then the tick is handed back and ' +
      'completes exactly once, under the same run id and job',
    async () => {
      const long = await longTick('handback');
      try {
        const { scheduler: first, jobId } = await submittedBy(long.runId);

        // Every scheduler stops, the one running the tick last (so no other can take it over).
        await Promise.all(schedulers.filter((s) => s !== first).map((s) => s.stop('SIGTERM')));
        const code = await first.stop('SIGTERM');
        const handedBack = await long.tickJob();
        const stateBetween = await handedBack?.getState();
        const filesBetween = readdirSync(long.outDir);
        const runsBetween = await api().get('/v1/schedules/handback/runs').set('x-api-key', ACME);
        const second = await spawnScheduler(env);
        schedulers = [second];
        await long.resume();
        const summary = await until('the summary of the resumed tick', () => summaries(long.outDir)[0]);
        await second.waitForLine((l) => l.message === 'schedule run finished' && l.runId === long.runId);
        const runs = await api().get('/v1/schedules/handback/runs').set('x-api-key', ACME);

        expect(code).toBe(0);
        expect(first.lines((l) => l.message === 'schedule tick interrupted by shutdown; handed back to the queue')).toHaveLength(1);
        expect(stateBetween).toBe('waiting');
        expect(handedBack?.attemptsMade).toBe(0); // a SIGTERM costs the tick no attempt
        expect(filesBetween).toEqual([]);
        expect((runsBetween.body.runs as { runId: string; status: string }[]).map((r) => [r.runId, r.status])).toEqual([
          [long.runId, 'running'],
        ]);
        expect(summary).toMatchObject({ runId: long.runId, status: 'completed' });
        expect(summary.files[0]?.jobId).toBe(jobId); // the job submitted before the SIGTERM, not a second one
        expect(readdirSync(long.outDir).sort()).toEqual([`${long.runId}.summary.json`, `iris.${stamp(long.tick)}.results.csv`]);
        expect(runsLogged([first], 'handback')).toEqual([]);
        expect(runsLogged([second], 'handback')).toEqual([long.runId]);
        expect((runs.body.runs as { runId: string; status: string }[]).map((r) => [r.runId, r.status])).toEqual([
          [long.runId, 'completed'],
        ]);
      } finally {
        await long.close();
      }
      await api().delete('/v1/schedules/handback').set('x-api-key', ACME).expect(204);
    },
    30_000,
  );

  it(
    'when the scheduler running a tick is killed (SIGKILL), then once its lock lapses another scheduler takes the tick over and ' +
      'completes it once, under the same run id and job',
    async () => {
      const long = await longTick('killed');
      try {
        const { scheduler: holder, jobId } = await submittedBy(long.runId);
        await Promise.all(schedulers.filter((s) => s !== holder).map((s) => s.stop('SIGTERM')));

        await holder.stop('SIGKILL');
        schedulers = [await spawnScheduler(env)];
        await long.resume();
        const summary = await until('the summary of the tick taken over', () => summaries(long.outDir)[0], 30_000);
        const tickJob = await long.tickJob();

        expect(summary).toMatchObject({ runId: long.runId, status: 'completed' });
        expect(summary.files[0]?.jobId).toBe(jobId); // the job the killed scheduler submitted
        expect(readdirSync(long.outDir).sort()).toEqual([`${long.runId}.summary.json`, `iris.${stamp(long.tick)}.results.csv`].sort());
        expect(runsLogged(schedulers, 'killed')).toEqual([long.runId]);
        expect(tickJob?.stalledCounter).toBe(1); // taken over once, by the stalled check
      } finally {
        await long.close();
      }
      await api().delete('/v1/schedules/killed').set('x-api-key', ACME).expect(204);
    },
    45_000,
  );

  it(
    'when a scheduler died while writing the files of a tick, then the scheduler that runs the tick again removes the temporary ' +
      'files it left, and only those',
    async () => {
      const where = dirs('leftover');
      const outDir = path.join(root, where.output);
      await api()
        .post('/v1/schedules')
        .set('x-api-key', ACME)
        .send(body('leftover', where, { cron: YEARLY }))
        .expect(201);
      const tick = Math.floor(Date.now() / 1000) * 1000;
      const runId = `leftover.${stamp(tick)}`;
      // What writeAtomically leaves behind when its process is killed mid-write, for this tick and another one.
      const left = [`.iris.${stamp(tick)}.results.csv.0123456789ab.tmp`, `.${runId}.summary.json.ba9876543210.tmp`];
      const otherTick = `.iris.${stamp(tick - 86_400_000)}.results.csv.0123456789ab.tmp`;
      for (const name of [...left, otherTick]) writeFileSync(path.join(outDir, name), 'half a file');
      const connection = newRedis();
      const ticks = new Queue(QueueName.Schedules, { connection, prefix: env.REDIS_PREFIX });

      await ticks.add(JobName.RunSchedule, { tenant: 'acme', name: 'leftover' }, { jobId: `repeat:acme/leftover:${tick}` });
      const summary = await until('the summary', () => summaries(outDir)[0]);
      await ticks.close();
      await connection.quit();
      const warned = schedulers.flatMap((s) =>
        s.lines((l) => l.message === 'removed temporary files an interrupted run of this tick left' && l.runId === runId),
      );

      expect(summary).toMatchObject({ runId, status: 'completed' });
      expect(readdirSync(outDir).sort()).toEqual([otherTick, `iris.${stamp(tick)}.results.csv`, `${runId}.summary.json`].sort());
      expect(warned).toHaveLength(1);
      expect((warned[0]?.files as string[]).sort()).toEqual([...left].sort());
      await api().delete('/v1/schedules/leftover').set('x-api-key', ACME).expect(204);
    },
  );

  it(
    'when the input directory holds a Parquet file DuckDB wrote and an Arrow stream apache-arrow wrote, then a tick runs both ' +
      'and writes Parquet results that DuckDB reads back row by row (and Arrow results, for another schedule)',
    async () => {
      mkdirSync(path.join(root, 'columnar', 'in'), { recursive: true });
      mkdirSync(path.join(root, 'columnar', 'out'), { recursive: true });
      const inDir = path.join(root, 'columnar', 'in');
      const outDir = path.join(root, 'columnar', 'out');
      writeFileSync(path.join(root, 'columnar', 'iris.csv'), iris.csv);
      const duck = await DuckDBInstance.create(':memory:');
      const db = await duck.connect();
      await db.run(
        `COPY (SELECT * FROM read_csv('${path.join(root, 'columnar', 'iris.csv')}')) TO '${path.join(inDir, 'from-duckdb.parquet')}' ` +
          '(FORMAT parquet, ROW_GROUP_SIZE 100)',
      );
      const golden = loadGolden('iris', '1');
      const arrowTable = new Table({
        id: vectorFromArray(iris.ids, new Utf8()),
        ...Object.fromEntries(
          FEATURES.map((f) => [
            f,
            vectorFromArray(
              golden.inputs.map((row) => Number(row[f])),
              new Float64(),
            ),
          ]),
        ),
      });
      writeFileSync(path.join(inDir, 'from-arrow.arrow'), tableToIPC(arrowTable, 'stream'));
      await api()
        .post('/v1/schedules')
        .set('x-api-key', ACME)
        .send(
          body(
            'columnar',
            { input: 'columnar/in', output: 'columnar/out' },
            {
              cron: YEARLY,
              input: { dir: 'columnar/in', pattern: '*.{parquet,arrow}' },
              output: { dir: 'columnar/out', format: 'parquet' },
            },
          ),
        )
        .expect(201);
      mkdirSync(path.join(root, 'columnar', 'out-arrow'));
      await api()
        .post('/v1/schedules')
        .set('x-api-key', ACME)
        .send(
          body(
            'columnar-arrow',
            { input: 'columnar/in', output: 'columnar/out-arrow' },
            { cron: YEARLY, input: { dir: 'columnar/in', pattern: '*.parquet' }, output: { dir: 'columnar/out-arrow', format: 'arrow' } },
          ),
        )
        .expect(201);
      const tick = Math.floor(Date.now() / 1000) * 1000;
      const connection = newRedis();
      const ticks = new Queue(QueueName.Schedules, { connection, prefix: env.REDIS_PREFIX });

      await ticks.add(JobName.RunSchedule, { tenant: 'acme', name: 'columnar' }, { jobId: `repeat:acme/columnar:${tick}` });
      await ticks.add(JobName.RunSchedule, { tenant: 'acme', name: 'columnar-arrow' }, { jobId: `repeat:acme/columnar-arrow:${tick}` });
      const summary = await until('the summary', () => summaries(outDir)[0]);
      const arrowSummary = await until('the summary of the Arrow schedule', () => summaries(path.join(root, 'columnar', 'out-arrow'))[0]);
      await ticks.close();
      await connection.quit();
      const read = async (file: string): Promise<Record<string, unknown>[]> =>
        (
          await db.runAndReadAll(
            `SELECT * EXCLUDE (file_row_number) FROM read_parquet('${file}', file_row_number = true) ORDER BY file_row_number`,
          )
        ).getRowObjectsJson();

      expect(summary).toMatchObject({ status: 'completed' });
      expect(summary.files.map((f) => [f.input, f.output, f.rows, f.failedRows, f.status])).toEqual([
        ['columnar/in/from-arrow.arrow', `columnar/out/from-arrow.${stamp(tick)}.results.parquet`, iris.ids.length, 0, 'completed'],
        ['columnar/in/from-duckdb.parquet', `columnar/out/from-duckdb.${stamp(tick)}.results.parquet`, iris.ids.length, 0, 'completed'],
      ]);
      const fromArrow = await read(path.join(root, String(summary.files[0]?.output)));
      const fromParquet = await read(path.join(root, String(summary.files[1]?.output)));
      expect(fromArrow.map((r) => r.id)).toEqual(iris.ids);
      expect(fromArrow.map((r) => r.label)).toEqual(iris.labels);
      expect(fromArrow.every((r) => r.error === null && typeof r.confidence === 'number')).toBe(true);
      expect(fromParquet).toEqual(fromArrow);
      expect(arrowSummary.files.map((f) => [f.output, f.status])).toEqual([
        [`columnar/out-arrow/from-duckdb.${stamp(tick)}.results.arrow`, 'completed'],
      ]);
      const arrowResults = tableFromIPC(readFileSync(path.join(root, String(arrowSummary.files[0]?.output))))
        .toArray()
        .map((row: { toJSON(): Record<string, unknown> }) => row.toJSON());
      const float32 = (rows: Record<string, unknown>[]): unknown[] =>
        rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'number' ? Math.fround(v) : v])));
      expect(float32(arrowResults)).toEqual(float32(fromParquet));
      expect(readdirSync(outDir).filter((f) => f.startsWith('.'))).toEqual([]);
      const openapi = await api().get('/openapi.json');
      expect(openapi.body.components.schemas.ScheduleRequest.properties.output.properties.format.enum).toEqual([
        'csv',
        'ndjson',
        'parquet',
        'arrow',
      ]);
      db.closeSync();
      await api().delete('/v1/schedules/columnar').set('x-api-key', ACME).expect(204);
      await api().delete('/v1/schedules/columnar-arrow').set('x-api-key', ACME).expect(204);
    },
  );

  it('when a scheduler starts without SCHEDULES_ROOT, then it warns that it runs no ticks, stays up, and stops on SIGTERM', async () => {
    const { SCHEDULES_ROOT: _root, ...withoutRoot } = env;

    const idle = spawnService('scheduler', { ...withoutRoot, LOG_LEVEL: 'info' });
    const started = await idle.waitForLine((l) => l.message === 'scheduler started');
    await sleep(500);
    const running = idle.child.exitCode === null;
    const code = await idle.stop('SIGTERM');

    expect(started.root).toBeNull();
    expect(idle.lines((l) => l.level === 'warn' && String(l.message).startsWith('SCHEDULES_ROOT is not set'))).toHaveLength(1);
    expect(running).toBe(true);
    expect(code).toBe(0);
  });
});
