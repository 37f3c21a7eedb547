import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { OnnxBatchClient, type JobStatusAnswer, type RolloutHistory, type RolloutState } from '@onnx-batch/cli';
import { runCli, type CliRun } from '../helpers/cli';
import { dropPrefixAndQuit, testEnv, type TestEnv } from '../helpers/env';
import { irisBorderRows, irisRowsCsv } from '../helpers/iris-rows';
import { addVersionCopy, copyModels, editManifest, type ModelsCopy } from '../helpers/model-files';
import { eventually, ProcessGroup } from '../helpers/reliability';

/**
 * The retraining loop of docs/models-in-production.md, end to end on real processes: a nightly
 * retrain drops `iris/3` into the model repository of a running service (tests never train: the
 * new version is a copy of version 1, an MLP, laid down as a training script's output would be —
 * manifest, model.onnx, golden.json, baseline.json — while version 2, the forest, serves); the
 * operator, through `onnx-batch rollout`, shadows it, evaluates it against the default on its
 * evaluation set (the quality gate of a canary), gives it a canary share, promotes it and rolls it
 * back; and the guard rolls back a shadow that disagrees with the default by itself.
 */
const ADMIN = 'loop-admin-key-0123456789';
const USER = 'loop-user-key-0123456789';
const BORDER = irisBorderRows(400);

describe('the retraining loop: a new version dropped in, shadowed, canaried, promoted, rolled back, and guarded', () => {
  const group = new ProcessGroup();
  let env: TestEnv;
  let models: ModelsCopy;
  let dir: string;
  let url: string;
  let client: OnnxBatchClient;

  /** The operator's command line, with the admin key in the environment as a deployment would have it. */
  const cli = async (...args: string[]): Promise<CliRun> => {
    const run = await runCli(args, { cwd: dir, env: { ONNX_BATCH_URL: url, ONNX_BATCH_API_KEY: ADMIN } });
    if (run.code !== 0) throw new Error(`onnx-batch ${args.join(' ')} exited ${run.code}:\n${run.stderr}`);
    return run;
  };
  const show = async (): Promise<RolloutState> => JSON.parse((await cli('rollout', 'show', 'iris', '--json')).stdout) as RolloutState;
  /** A job that names no version, as the nightly traffic sends them; answers it once finished. */
  const job = async (rows: unknown[][] = [[6.7, 3.0, 5.2, 2.3]]): Promise<JobStatusAnswer> => {
    const { jobId } = await client.submit({ model: 'iris', rows });
    return client.wait(jobId, { timeoutMs: 30_000 });
  };

  beforeAll(async () => {
    models = copyModels(['iris/1', 'iris/2']);
    // No pin in the manifests: the highest version would take over by itself, unless a rollout pins one.
    editManifest(models.dir, 'iris', '2', (m) => delete m.default);
    env = testEnv({
      MODELS_DIR: models.dir,
      MODEL_RELOAD_INTERVAL_MS: '300',
      RECOVERY_INTERVAL_MS: '500',
      RATE_LIMIT_PER_MINUTE: '0',
      API_KEYS: `ops:${ADMIN}:read+submit+admin,nightly:${USER}`,
    });
    dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-loop-'));
    writeFileSync(path.join(dir, 'border.csv'), irisRowsCsv(BORDER));
    [{ url }] = await Promise.all([group.api(env), group.worker(env)]);
    client = new OnnxBatchClient({ url, apiKey: USER });
  }, 60_000);

  afterAll(async () => {
    await group.stopAll('SIGTERM');
    await dropPrefixAndQuit(env.REDIS_PREFIX);
    models.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'when the rollout pins 2 and a retrain drops iris/3 in, then the running service lists 3 while jobs that name no ' +
      'version stay on 2',
    async () => {
      await cli('rollout', 'set', 'iris', '--default', '2', '-q');

      const added = addVersionCopy(models, 'iris', '1', '3');
      await eventually('the service lists iris 3', async () => /^iris\s+3\s+classification/m.test((await cli('models')).stdout), 10_000);

      expect(['model.json', 'model.onnx', 'golden.json', 'baseline.json'].filter((f) => !existsSync(path.join(added, f)))).toEqual([]);
      expect((await cli('models')).stdout).toMatch(/^iris\s+2\s+\*\s+classification/m);
      const submitted = await cli('submit', '-m', 'iris', '-i', 'border.csv', '--wait', '-q');
      const status = JSON.parse((await cli('status', submitted.stdout.trim())).stdout) as JobStatusAnswer;
      expect(status).toMatchObject({ status: 'completed', model: { name: 'iris', version: '2', route: 'default' } });
    },
    30_000,
  );

  it(
    'when 3 shadows every default chunk, then jobs still run on 2 and rollout show reports the rows compared and ' + 'their agreement',
    async () => {
      await cli('rollout', 'set', 'iris', '--shadow', '3:100', '-q');

      const served = await job(BORDER);
      let text = '';
      await eventually(
        "the shadow report has compared the job's rows",
        async () => {
          text = (await cli('rollout', 'show', 'iris')).stdout;
          return Number(/^ {2}rows compared +(\d+)$/m.exec(text)?.[1] ?? 0) >= BORDER.length;
        },
        20_000,
      );

      expect(served.model).toEqual({ name: 'iris', version: '2', route: 'default' });
      expect(text).toMatch(/^shadow 3 since revision \d+:$/m);
      const { shadow } = (await show()).report;
      expect(shadow).toMatchObject({ version: '3', failedRows: { default: 0, shadow: 0 } });
      expect(shadow?.agreement).toBeGreaterThan(0.3);
      expect(shadow?.agreement).toBeLessThan(1); // the MLP (3 = 1) and the forest (2) disagree on the border
    },
    30_000,
  );

  it('when 3 is evaluated against 2 on its evaluation set, then the report passes it and its canary passes the gate', async () => {
    const before = await runCli(['rollout', 'set', 'iris', '--no-shadow', '--canary', '3:50', '-q'], {
      cwd: dir,
      env: { ONNX_BATCH_URL: url, ONNX_BATCH_API_KEY: ADMIN },
    });
    const evaluated = await cli('evaluate', 'iris', '3', '--wait', '-q');

    // The evaluation set came with the copy of version 1: 2 of its 150 rows the MLP gets wrong, the forest none.
    expect(before.code).toBe(3);
    expect(before.stderr).toMatch(/OB_ERR_QUALITY_GATE, HTTP 409/);
    expect(before.stderr).toMatch(/no evaluation against the default 2/);
    expect(evaluated.code).toBe(0);
    expect(evaluated.stdout).toMatch(/^iris 3 against the default 2: pass \(evaluation [0-9a-f-]{36}\)$/m);
    expect(evaluated.stdout).toMatch(/^ {2}accuracy \* +0\.9867 +1 +-0\.01333 +\[-0\.0\d+, 0\]$/m);
  }, 60_000);

  it('when 3 takes a 50 % canary instead, then jobs split between 3 and 2 by job and the report counts both arms', async () => {
    await cli('rollout', 'set', 'iris', '--no-shadow', '--canary', '3:50', '-q');
    expect((await show()).gate).toMatchObject({ version: '3', baseline: '2', state: 'passed' });

    const jobs = await Promise.all(Array.from({ length: 20 }, () => job(BORDER.slice(0, 10))));
    await eventually(
      'the canary report counts both arms',
      async () => {
        const { canary } = (await show()).report;
        return canary !== null && canary.jobs.canary > 0 && canary.jobs.default > 0;
      },
      20_000,
    );

    const arms = jobs.map((j) => `${j.model.route}:${j.model.version}`);
    expect(arms.filter((a) => a !== 'canary:3' && a !== 'default:2')).toEqual([]);
    expect(arms).toContain('canary:3');
    expect(arms).toContain('default:2');
    expect((await cli('rollout', 'show', 'iris')).stdout).toMatch(/^canary 3 \(50 %\) since revision \d+:$/m);
  }, 30_000);

  it('when the canary is promoted, then jobs that name no version run on 3', async () => {
    const promoted = await cli('rollout', 'promote', 'iris');

    expect(promoted.stdout).toMatch(/^iris: jobs that name no version run on version 3$/m);
    expect((await job()).model).toEqual({ name: 'iris', version: '3', route: 'default' });
  }, 30_000);

  it('when the promotion is rolled back, then jobs run on 2 again', async () => {
    const rolledBack = await cli('rollout', 'rollback', 'iris');

    expect(rolledBack.stdout).toMatch(/^iris: jobs that name no version run on version 2$/m);
    expect((await job()).model).toEqual({ name: 'iris', version: '2', route: 'default' });
  }, 30_000);

  it('when a shadow agrees with the default less than the guard allows, then it rolls itself back and the history says why', async () => {
    await cli('rollout', 'set', 'iris', '--shadow', '3:100', '--min-agreement', '0.995', '--min-rows', '200', '-q');

    const served = await job(BORDER);
    await eventually('the guard rolled the shadow back', async () => (await show()).rollout.shadow === null, 20_000);

    expect(served.model.version).toBe('2');
    const latest = (await cli('rollout', 'history', 'iris', '--limit', '1')).stdout;
    expect(latest).toMatch(/auto-rollback +system\/auto-rollback +default 2, shadow 3@100%, guarded +default 2, guarded +shadow/);
    expect(latest).toMatch(/shadow version 3 agreed with the default on \d+\.\d+ % of \d+ rows \(less than minAgreement 0\.995\)$/m);
    const history = JSON.parse((await cli('rollout', 'history', 'iris', '--json')).stdout) as RolloutHistory;
    expect(history.entries.map((e) => e.action)).toEqual(['auto-rollback', 'put', 'rollback', 'promote', 'put', 'put', 'put']);
    expect((await job()).model.version).toBe('2');
  }, 30_000);
});
