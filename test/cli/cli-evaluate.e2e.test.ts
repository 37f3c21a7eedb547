import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Evaluation, RolloutHistory } from '@onnx-batch/cli';
import { runCli, type CliRun } from '../helpers/cli';
import { dropPrefixAndQuit, testEnv } from '../helpers/env';
import { irisBorderRows } from '../helpers/iris-rows';
import { copyModels } from '../helpers/model-files';
import { ProcessGroup } from '../helpers/reliability';

/**
 * `onnx-batch evaluate` and the quality gate of `onnx-batch rollout set`, against a real api and
 * worker process: iris 3 (a candidate) against the default 2, over its own evaluation set and over
 * a labelled file; the canary refused with the figures, then forced with a reason.
 */
const ADMIN = 'cli-evaluate-admin-key-0123456789';
const USER = 'cli-evaluate-user-key-0123456789';
const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'];

describe('onnx-batch evaluate end to end: a real api and worker', () => {
  const group = new ProcessGroup();
  const models = copyModels(['iris/1', 'iris/2', 'iris/3']);
  const env = testEnv({ MODELS_DIR: models.dir, RATE_LIMIT_PER_MINUTE: '0', API_KEYS: `ops:${ADMIN}:read+submit+admin,acme:${USER}` });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-cli-evaluate-'));
  let url: string;
  const cli = (args: string[], key = ADMIN): Promise<CliRun> =>
    runCli(args, { env: { ONNX_BATCH_URL: url, ONNX_BATCH_API_KEY: key }, timeoutMs: 120_000 });

  beforeAll(async () => {
    [{ url }] = await Promise.all([group.api(env), group.worker(env)]);
  }, 60_000);

  afterAll(async () => {
    await group.stopAll('SIGTERM');
    await dropPrefixAndQuit(env.REDIS_PREFIX);
    models.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('when iris 3 is evaluated without --wait, then the evaluation id is printed; with --wait --json, the report with a pass', async () => {
    const started = await cli(['evaluate', 'iris', '3']);
    const waited = await cli(['evaluate', 'iris', '3', '--wait', '--json', '-q']);
    const reader = await cli(['evaluate', 'iris', '3'], USER);

    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/^[0-9a-f-]{36}\n$/);
    expect(started.stderr).toMatch(/^evaluation [0-9a-f-]{36} of iris 3 against the default 2 started \(45 rows; jobs /);
    expect(waited.code).toBe(0);
    const evaluation = JSON.parse(waited.stdout) as Evaluation;
    expect(evaluation).toMatchObject({ model: 'iris', version: '3', baseline: '2', status: 'completed', report: { verdict: 'pass' } });
    expect(evaluation.report?.metrics.map((m) => m.metric)).toEqual(['accuracy', 'macroF1', 'logLoss']);
    expect(reader.code).toBe(3);
    expect(reader.stderr).toMatch(/OB_ERR_FORBIDDEN, HTTP 403/);
  }, 120_000);

  it(
    'when a labelled file shows iris 3 worse, then evaluate --wait exits 8 with the figures, rollout set --canary exits 3 ' +
      'naming them, and --force --reason starts it with the reason in the history',
    async () => {
      // The border rows labelled with what the default answers: the logistic regression disagrees on many.
      const rows = irisBorderRows(400);
      const file = path.join(dir, 'border.ndjson');
      const batch = path.join(dir, 'border-batch.ndjson');
      writeFileSync(batch, rows.map((r) => JSON.stringify(r)).join('\n'));
      const answered = await cli(['submit', '-m', 'iris', '--version', '2', '-i', batch, '-o', '-', '--out-format', 'ndjson', '-q'], USER);
      expect(answered.code).toBe(0);
      const labels = answered.stdout
        .trim()
        .split('\n')
        .map((line) => (JSON.parse(line) as { label: string }).label);
      writeFileSync(
        file,
        rows
          .map((r, i) => JSON.stringify({ id: `b-${i}`, ...Object.fromEntries(FEATURES.map((f, k) => [f, r[k]])), label: labels[i] }))
          .join('\n'),
      );

      const evaluated = await cli(['evaluate', 'iris', '3', '--file', file, '--wait', '-q']);
      const refused = await cli(['rollout', 'set', 'iris', '--default', '2', '--canary', '3:10']);
      const forced = await cli([
        'rollout',
        'set',
        'iris',
        '--canary',
        '3:10',
        '--force',
        '--reason',
        'adversarial set; watching labels',
        '-q',
      ]);
      const history = JSON.parse((await cli(['rollout', 'history', 'iris', '--limit', '1', '--json'])).stdout) as RolloutHistory;
      const table = await cli(['rollout', 'history', 'iris', '--limit', '1']);

      expect(evaluated.code).toBe(8);
      expect(evaluated.stdout).toMatch(/^iris 3 against the default 2: fail \(evaluation [0-9a-f-]{36}\)$/m);
      expect(evaluated.stdout).toMatch(/^ {2}over 400 of 400 rows/m);
      expect(evaluated.stdout).toMatch(/^ {2}accuracy \* +0\.\d+ +1 +-0\.\d+ +\[-0\.\d+, -0\.\d+\]$/m);
      expect(refused.code).toBe(3);
      expect(refused.stderr).toMatch(/OB_ERR_QUALITY_GATE, HTTP 409/);
      expect(refused.stderr).toMatch(/accuracy 0\.\d+ on version 3 against 1 on version 2 over 400 rows: difference -0\.\d+ \(95 % CI/);
      expect(forced.code).toBe(0);
      expect(history.entries[0]).toMatchObject({
        action: 'put',
        reason: 'adversarial set; watching labels',
        gate: { forced: true, state: 'failed' },
      });
      expect(table.stdout).toMatch(/adversarial set; watching labels; forced past the quality gate \(failed: /);
    },
    180_000,
  );
});
