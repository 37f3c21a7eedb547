import { runCli, type CliRun } from '../helpers/cli';
import { dropPrefixAndQuit, testEnv } from '../helpers/env';
import { copyModels, editManifest } from '../helpers/model-files';
import { ProcessGroup } from '../helpers/reliability';

/**
 * `onnx-batch rollout` against a real API process (rollouts live in Redis; no worker is needed
 * to set them): what `set` merges, replaces and clears, the refusals and their exit codes, and
 * the audit trail. The retraining loop (test/e2e/retraining-loop.e2e.test.ts) runs the same
 * command with workers and real traffic.
 */
const ADMIN = 'cli-rollout-admin-key-0123456789';
const USER = 'cli-rollout-user-key-0123456789';

interface RolloutJson {
  servingDefault: string;
  rollout: { default: string | null; canary: unknown; shadow: unknown; autoRollback: unknown; revision: number };
}

describe('onnx-batch rollout end to end: a real api process with an admin key', () => {
  const group = new ProcessGroup();
  // What `set` sends, not the quality gate: versions without an evaluation set are not gated (cli-evaluate tests the gate).
  const models = copyModels(['iris/1', 'iris/2']);
  for (const version of ['1', '2']) editManifest(models.dir, 'iris', version, (m) => delete m.evaluation);
  const env = testEnv({ MODELS_DIR: models.dir, API_KEYS: `ops:${ADMIN}:read+submit+admin,acme:${USER}` });
  let url: string;
  const cli = (args: string[], key = ADMIN): Promise<CliRun> => runCli(args, { env: { ONNX_BATCH_URL: url, ONNX_BATCH_API_KEY: key } });
  const show = async (): Promise<RolloutJson> => JSON.parse((await cli(['rollout', 'show', 'iris', '--json'])).stdout) as RolloutJson;

  beforeAll(async () => {
    ({ url } = await group.api(env));
  }, 60_000);

  afterAll(async () => {
    await group.stopAll('SIGTERM');
    await dropPrefixAndQuit(env.REDIS_PREFIX);
    models.remove();
  });

  it('when a rollout was never set, then show (with a read key) exits 0 and says the repository default serves', async () => {
    const run = await cli(['rollout', 'show', 'iris'], USER);

    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^iris: jobs that name no version run on version 2$/m);
    expect(run.stdout).toMatch(/^ {2}revision +0 \(never set\)$/m);
  });

  it('EXPECTED FAILURE – when a key without the admin role sets a rollout, then exit 3 with OB_ERR_FORBIDDEN', async () => {
    const run = await cli(['rollout', 'set', 'iris', '--default', '2'], USER);

    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/OB_ERR_FORBIDDEN, HTTP 403/);
  });

  it('when set is given one part at a time, then each set keeps the parts set before; --no-… removes one', async () => {
    const first = await cli(['rollout', 'set', 'iris', '--default', '2', '--canary', '1:20', '-q']);
    const second = await cli(['rollout', 'set', 'iris', '--shadow', '1:50']);
    const both = await show();
    const third = await cli(['rollout', 'set', 'iris', '--no-canary', '--min-agreement', '0.9', '--min-rows', '100', '-q']);
    const shadowOnly = await show();

    expect(first.code).toBe(0);
    expect(first.stderr).toBe('');
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/^ {2}canary +1 on 20 % of jobs that name no version$/m);
    expect(second.stdout).toMatch(/^ {2}shadow +1 on 50 % of the default's chunks$/m);
    expect(second.stderr).toMatch(/^rollout of iris set \(revision \d+\)$/m);
    expect(second.stderr).not.toMatch(/warning/);
    expect(both.rollout).toMatchObject({ default: '2', canary: { version: '1', percent: 20 }, shadow: { version: '1', percent: 50 } });
    expect(third.code).toBe(0);
    expect(shadowOnly.rollout).toMatchObject({
      default: '2',
      canary: null,
      shadow: { version: '1', percent: 50 },
      autoRollback: { minAgreement: 0.9, minRows: 100 },
    });
  });

  it('when a rule limit is added, then it joins the current rule; --no-auto-rollback removes the rule', async () => {
    await cli(['rollout', 'set', 'iris', '--max-failed-row-rate', '0.05']);
    const merged = await show();
    await cli(['rollout', 'set', 'iris', '--no-auto-rollback']);
    const removed = await show();

    expect(merged.rollout.autoRollback).toEqual({ maxFailedRowRate: 0.05, minAgreement: 0.9, minRows: 100 });
    expect(removed.rollout).toMatchObject({ autoRollback: null, shadow: { version: '1' } });
  });

  it('when set --replace is given one part, then every other part is cleared; --clear clears them all', async () => {
    const replaced = await cli(['rollout', 'set', 'iris', '--replace', '--canary', '1:5', '--json']);
    const cleared = await cli(['rollout', 'set', 'iris', '--clear', '--json']);

    expect(replaced.code).toBe(0);
    expect((JSON.parse(replaced.stdout) as RolloutJson).rollout).toMatchObject({
      default: null,
      canary: { version: '1', percent: 5 },
      shadow: null,
      autoRollback: null,
    });
    expect((JSON.parse(cleared.stdout) as RolloutJson).rollout).toMatchObject({
      default: null,
      canary: null,
      shadow: null,
      autoRollback: null,
    });
  });

  it('EXPECTED FAILURE – when set names a version the model lacks, then exit 3 naming the field', async () => {
    const run = await cli(['rollout', 'set', 'iris', '--shadow', '9:10']);

    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/OB_ERR_INVALID_REQUEST, HTTP 400/);
    expect(run.stderr).toMatch(/field 'shadow\.version'/);
  });

  it('EXPECTED FAILURE – when a rule limit is set without --min-rows and no rule exists, then exit 2 and nothing changes', async () => {
    const before = await show();
    const run = await cli(['rollout', 'set', 'iris', '--min-agreement', '0.9']);

    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--min-rows is needed/);
    expect((await show()).rollout.revision).toBe(before.rollout.revision);
  });

  it('when a canary is promoted and then rolled back, then each prints the version now serving; promoting again exits 3', async () => {
    await cli(['rollout', 'set', 'iris', '--default', '2', '--canary', '1:10', '-q']);

    const promoted = await cli(['rollout', 'promote', 'iris']);
    const rolledBack = await cli(['rollout', 'rollback', 'iris']);
    const again = await cli(['rollout', 'promote', 'iris']);

    expect(promoted.code).toBe(0);
    expect(promoted.stdout).toMatch(/^iris: jobs that name no version run on version 1$/m);
    expect(promoted.stderr).toMatch(/^iris: promoted; jobs that name no version now run on version 1$/m);
    expect(rolledBack.code).toBe(0);
    expect(rolledBack.stderr).toMatch(/^iris: rolled back; jobs that name no version now run on version 2$/m);
    expect(again.code).toBe(3);
    expect(again.stderr).toMatch(/OB_ERR_ROLLOUT_CONFLICT, HTTP 409/);
  });

  it('when history is asked, then the changes come newest first with who made them; --limit and --json bound and shape it', async () => {
    const table = await cli(['rollout', 'history', 'iris'], USER);
    const limited = await cli(['rollout', 'history', 'iris', '--limit', '2', '--json']);

    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^AT +ACTION +BY +FROM +TO +REASON$/);
    expect(lines.slice(1, 4).map((l) => l.split(/\s+/)[1])).toEqual(['rollback', 'promote', 'put']);
    expect(lines[1]).toMatch(/ ops\/[0-9a-f]{12} +default 1 +default 2$/);
    // every change this file made: 8 sets (a --clear among them), a promote and a rollback; the refused ones are not changes
    expect(lines).toHaveLength(1 + 10);
    const entries = (JSON.parse(limited.stdout) as { entries: { action: string }[] }).entries;
    expect(entries.map((e) => e.action)).toEqual(['rollback', 'promote']);
  });

  it('EXPECTED FAILURE – when the model is unknown, then exit 3 with OB_ERR_MODEL_NOT_FOUND', async () => {
    const run = await cli(['rollout', 'history', 'nope']);

    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/OB_ERR_MODEL_NOT_FOUND, HTTP 404/);
  });
});
