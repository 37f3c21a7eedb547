import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Evaluation, QualityGateOutcome, RolloutAuditEntry } from '@onnx-batch/contracts';
import { createLogger, JobStore, pairedBootstrap, qualityStoreFromConfig, RedisKeys, RolloutStore, seedOf } from '@onnx-batch/shared';
import { RolloutGuard } from '@onnx-batch/worker';
import { newRedis } from '../helpers/env';
import { loadGolden } from '../helpers/golden';
import { irisBorderRows } from '../helpers/iris-rows';
import { addVersionCopy, copyModels, editManifest, type ModelsCopy } from '../helpers/model-files';
import { startStack, type Stack } from '../helpers/stack';

// The quality gate before a rollout (docs/models-in-production.md#quality-gate), against a real
// Redis, a real worker and the real iris models: iris 3 (logistic regression, a candidate) is
// evaluated against the default 2 (the forest) over its held-out set and over an uploaded one,
// as two ordinary jobs over the queue; every figure is checked against one computed here from
// the two jobs' own results. Then the gate in PUT …/rollout, If-Match on the rollout, and the
// guard that rolls a canary back when its labelled accuracy is worse than the default's.

const ADMIN = 'gate-admin-key-0123456789abcdef';
const USER = 'gate-user-key-0123456789abcdef';
const LABELS = ['setosa', 'versicolor', 'virginica'];
const FEATURES = ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'] as const;

interface Result {
  id?: string;
  label: string;
  probabilities: Record<string, number>;
}

interface Answer {
  status: number;
  etag: string | null;
  body: Record<string, unknown>;
}

describe('quality gate: evaluations, the gate of a canary, If-Match on the rollout, and the quality guard', () => {
  let stack: Stack;
  let redis: Redis;
  let models: ModelsCopy;

  beforeAll(async () => {
    models = copyModels(['iris/1', 'iris/2', 'iris/3', 'diabetes/1']);
    // Version 1 carries no evaluation set here: the ungated version of these tests.
    editManifest(models.dir, 'iris', '1', (m) => delete m.evaluation);
    // A second diabetes version (the highest: the default), so that version 1 has a default to be compared with.
    addVersionCopy(models, 'diabetes', '1', '2');
    stack = await startStack({
      MODELS_DIR: models.dir,
      API_KEYS: `ops:${ADMIN}:read+submit+admin,acme:${USER}`,
      RATE_LIMIT_PER_MINUTE: '0',
      CHUNK_SIZE: '40',
      QUALITY_MIN_LABELS: '100',
    });
    redis = newRedis();
  }, 60_000);

  afterAll(async () => {
    await redis.quit();
    await stack.close();
    models.remove();
  });

  const call = async (
    method: string,
    target: string,
    body?: unknown,
    options: { key?: string; type?: string; headers?: Record<string, string> } = {},
  ): Promise<Answer> => {
    const raw = typeof body === 'string';
    const response = await fetch(`${stack.url}${target}`, {
      method,
      headers: {
        authorization: `Bearer ${options.key ?? ADMIN}`,
        ...(body === undefined ? {} : { 'content-type': options.type ?? 'application/json' }),
        ...options.headers,
      },
      ...(body === undefined ? {} : { body: raw ? body : JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, etag: response.headers.get('etag'), body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  /** Polls an evaluation until its jobs have finished (each read may make the report). */
  const finished = async (version: string, id: string): Promise<Evaluation> => {
    for (let i = 0; i < 600; i++) {
      const { status, body } = await call('GET', `/v1/models/iris/versions/${version}/evaluations/${id}`, undefined, { key: USER });
      expect(status).toBe(200);
      if (body.status !== 'running') return body as unknown as Evaluation;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`evaluation ${id} did not finish`);
  };

  const start = async (version: string, body?: unknown, type?: string): Promise<Evaluation> => {
    const answer = await call('POST', `/v1/models/iris/versions/${version}/evaluations`, body, type ? { type } : {});
    if (answer.status !== 202) throw new Error(`evaluation: ${answer.status} ${JSON.stringify(answer.body)}`);
    return answer.body as unknown as Evaluation;
  };

  const results = async (jobId: string): Promise<Result[]> => {
    const page = await call('GET', `/v1/batch-result/${jobId}/results?format=json&limit=10000`);
    expect(page.status).toBe(200);
    return page.body.results as Result[];
  };

  const job = async (jobId: string): Promise<Record<string, unknown>> => (await call('GET', `/v1/batch-result/${jobId}`)).body;

  /** What a finished job predicted, as stored: float32 probabilities (the JSON prints their shortest form). */
  const probabilities = (rows: Result[]): number[][] => rows.map((r) => LABELS.map((l) => Math.fround(r.probabilities[l] as number)));

  /** Accuracy, macro F1 (as scikit-learn, zero_division=0) and log loss of predictions against truths. */
  function metrics(p: number[][], truths: number[]): { accuracy: number; macroF1: number; logLoss: number } {
    const confusion = LABELS.map(() => LABELS.map(() => 0));
    let logLoss = 0;
    p.forEach((row, r) => {
      const truth = truths[r] as number;
      const cells = confusion[truth] as number[];
      const predicted = row.indexOf(Math.max(...row));
      cells[predicted] = (cells[predicted] as number) + 1;
      logLoss += -Math.log(Math.max(row[truth] as number, 1e-15));
    });
    const f1 = LABELS.map((_, k) => {
      const tp = (confusion[k] as number[])[k] as number;
      const support = (confusion[k] as number[]).reduce((a, b) => a + b, 0);
      const predicted = confusion.reduce((a, row) => a + (row[k] as number), 0);
      const precision = predicted > 0 ? tp / predicted : 0;
      const recall = support > 0 ? tp / support : 0;
      return precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    });
    const right = confusion.reduce((a, row, k) => a + (row[k] as number), 0);
    return { accuracy: right / p.length, macroF1: f1.reduce((a, b) => a + b, 0) / LABELS.length, logLoss: logLoss / p.length };
  }

  const evaluationSet = (version: string): Record<string, unknown>[] =>
    readFileSync(path.join(models.dir, 'iris', version, 'evaluation.ndjson'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>);

  let repositoryEvaluation: Evaluation;

  it(
    'when iris 3 is evaluated over its own set, then two jobs pinned to 3 and to the default 2 run over the queue and the ' +
      'report has the figures of their results',
    async () => {
      const set = evaluationSet('3');
      const started = await start('3');
      expect(started).toMatchObject({ model: 'iris', version: '3', baseline: '2', status: 'running', rows: 45 });
      expect(started.source).toMatchObject({ kind: 'repository', file: 'evaluation.ndjson' });

      const done = await finished('3', started.id);
      repositoryEvaluation = done;
      const [candidateJob, baselineJob] = [await job(done.jobs.candidate), await job(done.jobs.baseline)];
      const candidate = await results(done.jobs.candidate);
      const baseline = await results(done.jobs.baseline);
      const truths = set.map((row) => LABELS.indexOf(row.label as string));
      const want = { candidate: metrics(probabilities(candidate), truths), baseline: metrics(probabilities(baseline), truths) };

      expect(candidateJob).toMatchObject({ status: 'completed', model: { name: 'iris', version: '3', route: 'pinned' } });
      expect(baselineJob).toMatchObject({ status: 'completed', model: { name: 'iris', version: '2', route: 'pinned' } });
      expect(candidate.map((r) => r.id)).toEqual(set.map((r) => r.id)); // the rows' own ids
      const report = done.report;
      expect(done.status).toBe('completed');
      expect(report).toMatchObject({ kind: 'classification', rows: 45, comparedRows: 45, primary: 'accuracy', verdict: 'pass' });
      const byMetric = Object.fromEntries((report?.metrics ?? []).map((m) => [m.metric, m]));
      // The JSON results print each probability to 6 significant digits: the log loss agrees to 1e-6, the rest exactly.
      for (const metric of ['accuracy', 'macroF1', 'logLoss'] as const) {
        const digits = metric === 'logLoss' ? 6 : 12;
        expect(byMetric[metric]?.candidate).toBeCloseTo(want.candidate[metric], digits);
        expect(byMetric[metric]?.baseline).toBeCloseTo(want.baseline[metric], digits);
        expect(byMetric[metric]?.difference).toBeCloseTo(want.candidate[metric] - want.baseline[metric], digits);
      }
      // The held-out rows: the forest saw them in training, the logistic regression did not; both get them all right.
      expect(byMetric.accuracy).toMatchObject({ candidate: 1, baseline: 1, difference: 0 });
      expect(byMetric.logLoss?.difference).toBeGreaterThan(0);
      expect(report?.reason).toMatch(/^accuracy 1 on version 3 against 1 on version 2 over 45 rows: difference 0 \(95 % CI 0 to 0\)/);
    },
    120_000,
  );

  it(
    'when the report is read again or recomputed from the jobs\u2019 stored results with its seed, then the interval is the ' +
      'same and brackets the difference',
    async () => {
      const again = await finished('3', repositoryEvaluation.id);
      const list = await call('GET', '/v1/models/iris/versions/3/evaluations', undefined, { key: USER });
      const report = repositoryEvaluation.report;
      const truths = evaluationSet('3').map((row) => LABELS.indexOf(row.label as string));
      // The stored result chunks themselves (float32, every bit), as the report was made from them.
      const store = new JobStore(redis, stack.config.REDIS_PREFIX, stack.config.RESULT_TTL_SECONDS);
      const stored = async (jobId: string): Promise<Float32Array> => {
        const record = await store.get(jobId);
        const chunks = await store.readResults(jobId, 0, record?.chunks ?? 0);
        return Float32Array.from(chunks.flatMap((c) => Array.from(c?.values ?? [])));
      };
      const paired = {
        kind: 'classification' as const,
        classes: 3,
        truths,
        candidate: await stored(repositoryEvaluation.jobs.candidate),
        baseline: await stored(repositoryEvaluation.jobs.baseline),
      };

      const recomputed = await pairedBootstrap(paired, {
        resamples: report?.bootstrap.resamples ?? 0,
        confidence: report?.bootstrap.confidence ?? 0,
        seed: report?.bootstrap.seed ?? 0,
      });

      expect(again.report).toEqual(report);
      expect(report?.bootstrap).toEqual({
        resamples: 1000,
        confidence: 0.95,
        seed: seedOf(repositoryEvaluation.id),
        method: 'paired-percentile',
      });
      expect(paired.candidate).toHaveLength(45 * 3);
      for (const m of report?.metrics ?? []) {
        expect(m.ci).toEqual(recomputed.ci[m.metric]);
        expect(m.difference).toBeCloseTo(recomputed.point[m.metric].difference, 12);
        expect(m.ci?.low).toBeLessThanOrEqual(m.difference as number);
        expect(m.ci?.high).toBeGreaterThanOrEqual(m.difference as number);
      }
      expect((list.body.evaluations as Evaluation[]).map((e) => e.id)).toEqual([repositoryEvaluation.id]);
    },
  );

  it('when a regression model is evaluated, then RMSE (the primary) and MAE are those of the two jobs\u2019 values', async () => {
    const answer = await call('POST', '/v1/models/diabetes/versions/1/evaluations', undefined);
    expect(answer.status).toBe(202);
    const id = String(answer.body.id);
    let done = answer.body as unknown as Evaluation;
    for (let i = 0; i < 600 && done.status === 'running'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      done = (await call('GET', `/v1/models/diabetes/versions/1/evaluations/${id}`)).body as unknown as Evaluation;
    }
    const set = readFileSync(path.join(models.dir, 'diabetes', '1', 'evaluation.ndjson'), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => (JSON.parse(l) as { value: number }).value);
    const scores = async (jobId: string): Promise<{ rmse: number; mae: number }> => {
      const values = (await results(jobId)).map((r) => (r as unknown as { value: number }).value);
      const errors = values.map((v, i) => v - (set[i] as number));
      return {
        rmse: Math.sqrt(errors.reduce((a, e) => a + e * e, 0) / errors.length),
        mae: errors.reduce((a, e) => a + Math.abs(e), 0) / errors.length,
      };
    };
    const candidate = await scores(done.jobs.candidate);
    const baseline = await scores(done.jobs.baseline);

    expect(done).toMatchObject({ model: 'diabetes', version: '1', baseline: '2', status: 'completed' });
    expect(done.report).toMatchObject({ kind: 'regression', rows: 89, comparedRows: 89, primary: 'rmse', verdict: 'pass' });
    const [rmse, mae] = done.report?.metrics ?? [];
    // Results print values to 6 significant digits; RMSE and MAE are in the tens.
    expect(rmse).toMatchObject({ metric: 'rmse', better: 'lower' });
    expect(rmse?.candidate).toBeCloseTo(candidate.rmse, 3);
    expect(rmse?.baseline).toBeCloseTo(baseline.rmse, 3);
    expect(mae?.candidate).toBeCloseTo(candidate.mae, 3);
    // Version 2 is a copy of 1: the same answers, no difference, an interval of [0, 0].
    expect(rmse).toMatchObject({ difference: 0, ci: { low: 0, high: 0 } });
  }, 120_000);

  /** 400 rows over the versicolor/virginica border labelled with what the default (2) answers: 3 disagrees on many. */
  async function borderSetLabelledByTheDefault(): Promise<Record<string, unknown>[]> {
    const rows = irisBorderRows(400).map((r, i) => ({ id: `border-${i}`, ...Object.fromEntries(FEATURES.map((f, k) => [f, r[k]])) }));
    const submitted = await call('POST', '/v1/batch-predict', { model: 'iris', version: '2', inputs: rows });
    const jobId = String(submitted.body.jobId);
    for (let i = 0; i < 600 && (await job(jobId)).status !== 'completed'; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    const answers = await results(jobId);
    return rows.map((row, i) => ({ ...row, label: answers[i]?.label }));
  }

  let failing: Evaluation;

  it('when an uploaded set shows iris 3 clearly worse than the default, then the verdict is fail with the figures', async () => {
    const labelled = await borderSetLabelledByTheDefault();
    const started = await start('3', labelled.map((r) => JSON.stringify(r)).join('\n'), 'application/x-ndjson');

    failing = await finished('3', started.id);
    const candidate = probabilities(await results(failing.jobs.candidate));
    const truths = labelled.map((r) => LABELS.indexOf(r.label as string));
    const accuracy = metrics(candidate, truths).accuracy;

    expect(failing.source).toEqual({ kind: 'upload', contentType: 'application/x-ndjson' });
    expect(failing.report).toMatchObject({ rows: 400, comparedRows: 400, verdict: 'fail' });
    const primary = failing.report?.metrics[0];
    expect(primary?.baseline).toBe(1);
    expect(primary?.candidate).toBeCloseTo(accuracy, 12);
    expect(accuracy).toBeLessThan(0.95);
    expect(primary?.ci?.high).toBeLessThan(0);
    expect(failing.report?.reason).toMatch(/and the interval excludes no change$/);
  }, 120_000);

  it(
    'when a canary of iris 3 is asked for while its latest evaluation fails, then 409 names the metric and figures; force ' +
      'with a reason starts it and the audit entry records both',
    async () => {
      const refused = await call('PUT', '/v1/models/iris/rollout', { default: '2', canary: { version: '3', percent: 10 } });
      const noReason = await call('PUT', '/v1/models/iris/rollout', { default: '2', canary: { version: '3', percent: 10 }, force: true });
      const forced = await call('PUT', '/v1/models/iris/rollout', {
        default: '2',
        canary: { version: '3', percent: 10 },
        force: true,
        reason: 'the border set is adversarial; watching labelled accuracy instead',
      });
      const history = await call('GET', '/v1/models/iris/rollout/history?limit=1');

      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('OB_ERR_QUALITY_GATE');
      const primary = failing.report?.metrics[0];
      const gate = refused.body.gate as QualityGateOutcome;
      expect(gate).toMatchObject({ version: '3', baseline: '2', state: 'failed', passes: false, evaluationId: failing.id, primary });
      const figures = failing.report?.reason ?? '';
      expect(refused.body.detail).toContain(figures);
      expect(refused.body.detail).toMatch(
        new RegExp(
          '^version 3 does not pass the quality gate against the default 2: .*accuracy 0\\.\\d+ on version 3 against 1 on ' +
            'version 2 over 400 rows: difference -0\\.\\d+ \\(95 % CI -0\\.\\d+ to -0\\.\\d+\\)',
        ),
      );
      expect(noReason.status).toBe(400);
      expect(noReason.body.errors).toEqual([expect.objectContaining({ field: 'reason' })]);
      expect(forced.status).toBe(200);
      expect(forced.body.rollout).toMatchObject({ canary: { version: '3', percent: 10 } });
      expect(forced.body.gate).toMatchObject({ state: 'failed', evaluationId: failing.id });
      const [entry] = history.body.entries as RolloutAuditEntry[];
      expect(entry).toMatchObject({
        action: 'put',
        reason: 'the border set is adversarial; watching labelled accuracy instead',
        gate: { version: '3', baseline: '2', state: 'failed', forced: true, evaluationId: failing.id, primary },
      });
      expect(entry?.gate?.detail).toContain(figures);
    },
  );

  it(
    'when iris 3 then passes a new evaluation, the canary starts without force; a version without an evaluation set is not ' + 'gated',
    async () => {
      expect((await call('PUT', '/v1/models/iris/rollout', { default: '2' })).status).toBe(200);
      const passing = await finished('3', (await start('3', {})).id);

      const started = await call('PUT', '/v1/models/iris/rollout', { default: '2', canary: { version: '3', percent: 10 } });
      const [entry] = (await call('GET', '/v1/models/iris/rollout/history?limit=1')).body.entries as RolloutAuditEntry[];
      const ungated = await call('PUT', '/v1/models/iris/rollout', { default: '2', canary: { version: '1', percent: 10 } });
      // Against another default, iris 3 has no evaluation: the gate says so.
      const otherDefault = await call('PUT', '/v1/models/iris/rollout', { default: '1', canary: { version: '3', percent: 10 } });

      expect(passing.report?.verdict).toBe('pass');
      expect(started.status).toBe(200);
      expect(started.body.gate).toMatchObject({ state: 'passed', passes: true, evaluationId: passing.id });
      expect(entry?.gate).toMatchObject({ state: 'passed', evaluationId: passing.id });
      expect(entry?.gate?.forced).toBeUndefined();
      expect(ungated.status).toBe(200);
      expect(ungated.body.gate).toMatchObject({ version: '1', state: 'not-gated', passes: true, evaluationId: null });
      expect((ungated.body.gate as QualityGateOutcome).detail).toMatch(/has no evaluation set .*: it is not gated$/);
      expect(otherDefault.status).toBe(409);
      expect((otherDefault.body.gate as QualityGateOutcome).state).toBe('missing');
      expect((await call('PUT', '/v1/models/iris/rollout', { default: '2' })).status).toBe(200);
    },
    120_000,
  );

  it('EXPECTED FAILURE – when an uploaded set has bad rows, then 400 names each row and no evaluation starts', async () => {
    const before = ((await call('GET', '/v1/models/iris/versions/3/evaluations')).body.evaluations as unknown[]).length;
    const good = { id: 'x', sepal_length: 5.1, sepal_width: 3.5, petal_length: 1.4, petal_width: 0.2, label: 'setosa' };
    const ndjson = [
      good,
      { ...good, label: 'rose' },
      good,
      { ...good, petal_length: 99 },
      { ...good, label: undefined },
      { ...good, value: 1.5 },
    ]
      .map((r) => JSON.stringify(r))
      .join('\n');

    const streamed = await call('POST', '/v1/models/iris/versions/3/evaluations', ndjson, { type: 'application/x-ndjson' });
    const array = await call('POST', '/v1/models/iris/versions/3/evaluations', [good, { ...good, sepal_width: 'wide' }]);
    const csv = await call(
      'POST',
      '/v1/models/iris/versions/3/evaluations',
      'sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n',
      {
        type: 'text/csv',
      },
    );
    const byReader = await call('POST', '/v1/models/iris/versions/3/evaluations', {}, { key: USER });
    const noSet = await call('POST', '/v1/models/iris/versions/1/evaluations');
    const theDefault = await call('POST', '/v1/models/iris/versions/2/evaluations');
    const unknown = await call('GET', '/v1/models/iris/versions/3/evaluations/00000000-0000-4000-8000-000000000000');

    expect(streamed.status).toBe(400);
    expect(streamed.body.code).toBe('OB_ERR_INVALID_ROWS');
    expect((streamed.body.errors as { line: number; field: string }[]).map((e) => [e.line, e.field])).toEqual([
      [2, 'label'],
      [4, 'petal_length'],
      [5, 'label'],
      [6, 'value'],
    ]);
    expect(streamed.body.detail).toMatch(/^4 labelled row\(s\) are invalid \(first, line 2 field 'label': 'rose' is not a label of iris/);
    expect(array.status).toBe(400);
    expect(array.body.errors).toEqual([expect.objectContaining({ row: 1, field: 'sepal_width' })]);
    expect(csv.status).toBe(400);
    expect(csv.body.errors).toEqual([expect.objectContaining({ line: 1, field: 'label', message: 'column is missing' })]);
    expect(byReader.status).toBe(403);
    expect(noSet.status).toBe(404);
    expect(noSet.body.code).toBe('OB_ERR_EVALUATION_NOT_FOUND');
    expect(noSet.body.detail).toMatch(/has no evaluation set in the repository .*: upload labelled rows/);
    expect(theDefault.status).toBe(400);
    expect(theDefault.body.errors).toEqual([expect.objectContaining({ field: 'version' })]);
    expect(unknown.status).toBe(404);
    expect(unknown.body.code).toBe('OB_ERR_EVALUATION_NOT_FOUND');
    expect(((await call('GET', '/v1/models/iris/versions/3/evaluations')).body.evaluations as unknown[]).length).toBe(before);
  });

  it('when the rollout is changed with If-Match, then a stale tag gets 412 and of two changes with one tag exactly one wins', async () => {
    const read = await call('GET', '/v1/models/iris/rollout', undefined, { key: USER });
    const tag = read.etag as string;
    const revision = (read.body.rollout as { revision: number }).revision;

    const first = await call('PUT', '/v1/models/iris/rollout', { default: '2' }, { headers: { 'if-match': tag } });
    const stale = await call('PUT', '/v1/models/iris/rollout', { default: '1' }, { headers: { 'if-match': tag } });
    const racing = await Promise.all(
      ['1', '2'].map((v) => call('PUT', '/v1/models/iris/rollout', { default: v }, { headers: { 'if-match': first.etag as string } })),
    );
    const after = await call('GET', '/v1/models/iris/rollout');
    const history = (await call('GET', `/v1/models/iris/rollout/history?limit=5`)).body.entries as RolloutAuditEntry[];
    const staleRollback = await call('POST', '/v1/models/iris/rollout/rollback', undefined, { headers: { 'if-match': tag } });
    const anyTag = await call('PUT', '/v1/models/iris/rollout', { default: '2' }, { headers: { 'if-match': '*' } });
    const malformed = await call('PUT', '/v1/models/iris/rollout', { default: '2' }, { headers: { 'if-match': 'revision 3' } });

    expect(tag).toBe(`"${revision}"`);
    expect(first.status).toBe(200);
    expect(first.etag).toBe(`"${revision + 1}"`);
    expect(stale.status).toBe(412);
    expect(stale.body).toMatchObject({ code: 'OB_ERR_PRECONDITION_FAILED', revision: revision + 1 });
    expect(racing.map((r) => r.status).sort()).toEqual([200, 412]);
    const winner = racing.find((r) => r.status === 200);
    expect(after.etag).toBe(`"${revision + 2}"`);
    expect(after.body.rollout).toEqual(winner?.body.rollout);
    expect(history.filter((e) => (e.from as { revision: number }).revision >= revision)).toHaveLength(2);
    expect(staleRollback.status).toBe(412);
    expect(anyTag.status).toBe(200);
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors).toEqual([expect.objectContaining({ field: 'If-Match' })]);
  });

  it(
    'when a canary\u2019s labelled accuracy is worse than the default\u2019s by more than the margin, then the guard rolls it ' +
      'back with both figures, and leaves it alone while an arm has fewer than QUALITY_MIN_LABELS labels',
    async () => {
      const keys = new RedisKeys(stack.config.REDIS_PREFIX);
      const logger = createLogger('error', 'test');
      const guardCheck = async (): Promise<void> => {
        // A store of its own each time: nothing cached from an earlier check.
        const rollouts = new RolloutStore(redis, keys);
        const guard = new RolloutGuard(stack.api.repository, rollouts, redis, keys, logger, {
          quality: qualityStoreFromConfig(redis, keys, stack.config),
          config: stack.config,
        });
        await guard.check();
      };
      const canary = await call('PUT', '/v1/models/iris/rollout', { default: '2', canary: { version: '1', percent: 50 } });
      expect(canary.status).toBe(200);
      const revision = (canary.body.rollout as { revision: number }).revision;
      // Jobs naming no version, until the rollout has sent one to each arm (a hash of the job id picks the arm).
      const inputs = (loadGolden('iris', '1').inputs as Record<string, number>[]).map((row, i) => ({ id: `g-${i}`, ...row }));
      const byArm = new Map<string, string>();
      for (let i = 0; i < 40 && byArm.size < 2; i++) {
        const submitted = await call('POST', '/v1/batch-predict', { model: 'iris', inputs }, { key: USER });
        const jobId = String(submitted.body.jobId);
        let status = await call('GET', `/v1/batch-result/${jobId}?wait=30`, undefined, { key: USER });
        while (status.body.status !== 'completed')
          status = await call('GET', `/v1/batch-result/${jobId}?wait=30`, undefined, { key: USER });
        const route = (status.body.model as { route: string }).route;
        if (!byArm.has(route)) byArm.set(route, jobId);
      }
      const canaryJob = byArm.get('canary') as string;
      const defaultJob = byArm.get('default') as string;
      const label = (jobId: string, labels: { index: number; label: string }[]) =>
        call('POST', `/v1/batch-result/${jobId}/labels`, labels, { key: USER });
      const truth = (row: number): string => LABELS[Math.floor(row / 50)] as string;
      // The default's 150 rows with their true species; the canary's first 60, 30 of them (setosa) said to be virginica.
      expect(
        (
          await label(
            defaultJob,
            inputs.map((_, index) => ({ index, label: truth(index) })),
          )
        ).status,
      ).toBe(200);
      const canaryLabels = inputs.map((_, index) => ({ index, label: index < 30 ? 'virginica' : truth(index) }));
      expect((await label(canaryJob, canaryLabels.slice(0, 60))).status).toBe(200);

      await guardCheck();
      const alone = await call('GET', '/v1/models/iris/rollout');

      expect((alone.body.rollout as { revision: number; canary: unknown }).revision).toBe(revision);
      expect((alone.body.rollout as { canary: unknown }).canary).toEqual({ version: '1', percent: 50 });

      expect((await label(canaryJob, canaryLabels.slice(60))).status).toBe(200);
      const canaryResults = await call('GET', `/v1/batch-result/${canaryJob}/results?format=json&limit=1000`, undefined, { key: USER });
      const right = (canaryResults.body.results as Result[]).filter((r, i) => r.label === canaryLabels[i]?.label).length;
      const defaultQuality = await call('GET', `/v1/batch-result/${defaultJob}/quality`, undefined, { key: USER });

      await guardCheck();
      const rolledBack = await call('GET', '/v1/models/iris/rollout');
      const [entry] = (await call('GET', '/v1/models/iris/rollout/history?limit=1')).body.entries as RolloutAuditEntry[];

      expect(defaultQuality.body.accuracy).toBe(1);
      expect((rolledBack.body.rollout as { canary: unknown }).canary).toBeNull();
      expect(rolledBack.body.servingDefault).toBe('2');
      expect(entry).toMatchObject({ action: 'auto-rollback', actor: { tenant: 'system', keyId: 'auto-rollback' } });
      const figure = (x: number): string => String(Number(x.toPrecision(4))).replace('.', '\\.');
      expect(entry?.reason).toMatch(
        new RegExp(
          `^canary version 1's labelled accuracy ${figure(right / 150)} on 150 rows against the default version 2's 1 on 150 ` +
            `rows \\(hour buckets from .*\\): lower by ${figure(1 - right / 150)}, more than QUALITY_ALERT_MARGIN 0\\.05$`,
        ),
      );
      expect(right / 150).toBeLessThan(0.95);
    },
    120_000,
  );
});
