import type { Redis } from 'ioredis';
import { dropPrefix, keysWithPrefix, newRedis, testEnv, type TestEnv } from '../helpers/env';
import { irisBorderRows as borderRows } from '../helpers/iris-rows';
import { addVersionCopy, copyModels, editManifest, type ModelsCopy } from '../helpers/model-files';
import { eventually, ProcessGroup, sleep } from '../helpers/reliability';

/**
 * Rollouts through real processes: two API replicas and a worker on one Redis. Canary routing by
 * job id, shadow runs off the result path, promote, rollback, the auto-rollback rule and the
 * audit trail, each change made through one replica and seen through the other.
 */
const ADMIN = 'ops-admin-key-0123456789';
const USER = 'acme-user-key-0123456789';

describe('rollouts: canary, shadow, promote, rollback and auto-rollback across two API processes', () => {
  const group = new ProcessGroup();
  const client: Redis = newRedis();
  let env: TestEnv;
  let models: ModelsCopy;
  const urls: string[] = [];

  const call = async (
    i: number,
    method: string,
    path: string,
    body?: unknown,
    key = ADMIN,
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(`${urls[i] as string}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const submit = async (i: number, inputs: unknown[], version?: string): Promise<string> => {
    const answer = await call(i, 'POST', '/v1/batch-predict', { model: 'iris', inputs, ...(version ? { version } : {}) }, USER);
    if (answer.status !== 202) throw new Error(`submit: ${answer.status} ${JSON.stringify(answer.body)}`);
    return String(answer.body.jobId);
  };
  const rollout = async (i: number): Promise<Record<string, unknown>> => (await call(i, 'GET', '/v1/models/iris/rollout')).body;
  const put = (i: number, spec: unknown) => call(i, 'PUT', '/v1/models/iris/rollout', spec);
  /** The job's status document once it has finished (long polls, as the submitting tenant). */
  const waitJob = async (jobId: string): Promise<Record<string, unknown>> => {
    for (let i = 0; i < 60; i++) {
      const { body } = await call(i % 2, 'GET', `/v1/batch-result/${jobId}?wait=5`, undefined, USER);
      if (['completed', 'failed', 'cancelled'].includes(String(body.status))) return body;
      await sleep(10);
    }
    throw new Error(`job ${jobId} did not finish`);
  };
  const resultLines = async (i: number, jobId: string): Promise<string[]> => {
    const response = await fetch(`${urls[i] as string}/v1/batch-result/${jobId}/results`, {
      headers: { authorization: `Bearer ${USER}`, accept: 'application/x-ndjson' },
    });
    return (await response.text()).split('\n').filter((line) => line !== '');
  };

  beforeAll(async () => {
    models = copyModels(['iris/1', 'iris/2']);
    editManifest(models.dir, 'iris', '2', (m) => delete m.default); // the highest version is the default, unless a rollout pins one
    // Routing, not quality: versions without an evaluation set are not gated (test/integration/quality-gate.test.ts is).
    for (const version of ['1', '2']) editManifest(models.dir, 'iris', version, (m) => delete m.evaluation);
    env = testEnv({
      MODELS_DIR: models.dir,
      MODEL_RELOAD_INTERVAL_MS: '300',
      RECOVERY_INTERVAL_MS: '500',
      MAX_ACTIVE_JOBS_PER_TENANT: '100000',
      RATE_LIMIT_PER_MINUTE: '0',
      API_KEYS: `ops:${ADMIN}:read+submit+admin,acme:${USER}`,
    });
    for (let i = 0; i < 2; i++) urls.push((await group.api(env)).url);
    await group.worker(env);
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    await dropPrefix(client, env.REDIS_PREFIX);
    await client.quit();
    models.remove();
  });

  it('when a key without the admin role changes a rollout, then 403; reading it needs only read', async () => {
    const refused = await call(0, 'PUT', '/v1/models/iris/rollout', { default: '2' }, USER);
    const read = await call(1, 'GET', '/v1/models/iris/rollout', undefined, USER);

    expect(refused.status).toBe(403);
    expect(refused.body.code).toBe('OB_ERR_FORBIDDEN');
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ model: 'iris', servingDefault: '2', rollout: { revision: 0, canary: null, shadow: null } });
  });

  it('when a rollout names an unknown version or a version equal to the default, then 400 names the field', async () => {
    const unknown = await put(0, { default: '2', canary: { version: '9', percent: 10 } });
    const same = await put(0, { default: '2', shadow: { version: '2', percent: 10 } });

    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ code: 'OB_ERR_INVALID_REQUEST', errors: [{ field: 'canary.version' }] });
    expect(same.status).toBe(400);
    expect(same.body).toMatchObject({ errors: [{ field: 'shadow.version' }] });
  });

  it(
    'when a canary takes 20 % through one replica, then 2000 jobs through both land within ±5 points of it, and jobs naming a ' +
      'version are never rerouted',
    async () => {
      expect((await put(0, { default: '2', canary: { version: '1', percent: 20 } })).status).toBe(200);
      await eventually(
        'the other replica sees the canary',
        async () => ((await rollout(1)).rollout as { canary: unknown }).canary !== null,
        5000,
      );

      const ids: string[] = [];
      for (let batch = 0; batch < 2000; batch += 50) {
        ids.push(...(await Promise.all(Array.from({ length: 50 }, (_, i) => submit((batch + i) % 2, [[5.1, 3.5, 1.4, 0.2]])))));
      }
      const pinned = await Promise.all(Array.from({ length: 100 }, (_, i) => submit(i % 2, [[5.1, 3.5, 1.4, 0.2]], '2')));
      const routes = await Promise.all(
        ids.map((id) => client.hmget(`${env.REDIS_PREFIX}:job:{${id.slice(0, 2)}}${id.slice(2)}`, 'route', 'version')),
      );
      const pinnedRoutes = await Promise.all(
        pinned.map((id) => client.hmget(`${env.REDIS_PREFIX}:job:{${id.slice(0, 2)}}${id.slice(2)}`, 'route', 'version')),
      );

      const canary = routes.filter(([route, version]) => route === 'canary' && version === '1').length;
      const byDefault = routes.filter(([route, version]) => route === 'default' && version === '2').length;
      expect(canary + byDefault).toBe(2000);
      expect(Math.abs((canary / 2000) * 100 - 20)).toBeLessThanOrEqual(5);
      expect(pinnedRoutes.every(([route, version]) => route === 'pinned' && version === '2')).toBe(true);
      const status = await waitJob(ids.find((_, i) => routes[i]?.[0] === 'canary') as string);
      expect(status.model).toEqual({ name: 'iris', version: '1', route: 'canary' });
      await eventually(
        'the canary report counts both arms',
        async () => {
          const report = (await rollout(1)).report as { canary: { jobs: { default: number; canary: number } } };
          return report.canary.jobs.canary > 0 && report.canary.jobs.default > 0;
        },
        20_000,
      );
    },
    120_000,
  );

  it('when a shadow runs every default chunk, then results are exactly those without it, and the report compares the answers', async () => {
    const rows = borderRows(400);
    const before = await resultLines(0, String((await waitJob(await submit(0, rows, '2'))).jobId));
    expect((await put(1, { default: '2', shadow: { version: '1', percent: 100 } })).status).toBe(200);
    await eventually(
      'both replicas see the shadow',
      async () => (await Promise.all([0, 1].map(rollout))).every((r) => (r.rollout as { shadow: unknown }).shadow !== null),
      5000,
    );

    const jobId = await submit(0, rows);
    const job = await waitJob(jobId);
    const after = await resultLines(1, jobId);

    expect(job).toMatchObject({ status: 'completed', model: { version: '2', route: 'default' } });
    expect(after).toEqual(before);
    await eventually(
      'the shadow report has compared the rows',
      async () => {
        const report = (await rollout(0)).report as { shadow: { rowsCompared: number } };
        return report.shadow.rowsCompared >= rows.length;
      },
      20_000,
    );
    const { shadow } = (await rollout(1)).report as { shadow: Record<string, unknown> };
    expect(shadow).toMatchObject({ version: '1', failedRows: { default: 0, shadow: 0 } });
    expect(shadow.agreement).toBeGreaterThan(0.3);
    expect(shadow.agreement).toBeLessThan(1); // the MLP and the forest disagree on the border
    expect(shadow.meanAbsDifference).toBeGreaterThan(0);
    const metrics = await (await fetch(`${urls[0] as string}/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } })).text();
    expect(metrics).toMatch(/onnx_batch_shadow_agreement\{model="iris",version="1"\} 0\.\d+/);
  }, 60_000);

  it(
    'when a canary is promoted through one replica and rolled back through the other, then jobs follow, and the history (newest ' +
      'first) says who did what',
    async () => {
      expect((await put(0, { default: '2', canary: { version: '1', percent: 10 } })).status).toBe(200);
      const promoted = await call(1, 'POST', '/v1/models/iris/rollout/promote');
      await eventually('replica 0 serves version 1 by default', async () => (await rollout(0)).servingDefault === '1', 5000);
      const afterPromote = await waitJob(await submit(0, [[6.7, 3.0, 5.2, 2.3]]));
      const rolledBack = await call(0, 'POST', '/v1/models/iris/rollout/rollback');
      await eventually('replica 1 serves version 2 again', async () => (await rollout(1)).servingDefault === '2', 5000);
      const afterRollback = await waitJob(await submit(1, [[6.7, 3.0, 5.2, 2.3]]));
      const again = await call(1, 'POST', '/v1/models/iris/rollout/promote');
      const history = await call(1, 'GET', '/v1/models/iris/rollout/history?limit=3', undefined, USER);

      expect(promoted.status).toBe(200);
      expect(promoted.body).toMatchObject({ servingDefault: '1', rollout: { default: '1', canary: null, previousDefault: '2' } });
      expect(afterPromote.model).toEqual({ name: 'iris', version: '1', route: 'default' });
      expect(rolledBack.body).toMatchObject({ servingDefault: '2', rollout: { default: '2', canary: null, shadow: null } });
      expect(afterRollback.model).toEqual({ name: 'iris', version: '2', route: 'default' });
      expect(again.status).toBe(409); // nothing to promote
      expect(again.body.code).toBe('OB_ERR_ROLLOUT_CONFLICT');
      const entries = history.body.entries as {
        action: string;
        actor: { tenant: string; keyId: string };
        from: { default: string | null };
        to: { default: string | null };
      }[];
      expect(entries.map((e) => e.action)).toEqual(['rollback', 'promote', 'put']);
      expect(entries[0]).toMatchObject({ actor: { tenant: 'ops' }, from: { default: '1' }, to: { default: '2' } });
      expect(entries[1]).toMatchObject({ from: { default: '2' }, to: { default: '1' } });
      expect(entries[0]?.actor.keyId).toMatch(/^[0-9a-f]{12}$/);
    },
    60_000,
  );

  it(
    'when promote and rollback carry a reason, then the history keeps it; a bare POST has none, and a bad body is a 400 naming ' +
      'the field with nothing changed',
    async () => {
      expect((await put(0, { default: '2', canary: { version: '1', percent: 10 } })).status).toBe(200);
      const tooLong = await call(0, 'POST', '/v1/models/iris/rollout/promote', { reason: 'x'.repeat(1001) });
      const unknownField = await call(0, 'POST', '/v1/models/iris/rollout/promote', { why: 'because' });
      const notJson = await fetch(`${urls[0] as string}/v1/models/iris/rollout/promote`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: '{"reason":',
      });
      const unchanged = await rollout(1);
      const promoted = await call(0, 'POST', '/v1/models/iris/rollout/promote', { reason: '  canary 1 held up for a week ' });
      const rolledBack = await call(1, 'POST', '/v1/models/iris/rollout/rollback');
      const history = await call(1, 'GET', '/v1/models/iris/rollout/history?limit=2', undefined, USER);

      expect(tooLong.status).toBe(400);
      expect(tooLong.body).toMatchObject({ code: 'OB_ERR_INVALID_REQUEST', errors: [{ field: 'reason' }] });
      expect(unknownField.status).toBe(400);
      expect(notJson.status).toBe(400);
      expect(unchanged).toMatchObject({ servingDefault: '2', rollout: { canary: { version: '1' } } });
      expect(promoted.status).toBe(200);
      expect(rolledBack.status).toBe(200);
      const entries = history.body.entries as { action: string; reason: string | null }[];
      expect(entries.map((e) => [e.action, e.reason])).toEqual([
        ['rollback', null],
        ['promote', 'canary 1 held up for a week'],
      ]);
    },
    60_000,
  );

  it('when the shadow agrees less than the rule allows, then the rollout rolls itself back and the history says why', async () => {
    expect(
      (await put(0, { default: '2', shadow: { version: '1', percent: 100 }, autoRollback: { minAgreement: 0.995, minRows: 200 } })).status,
    ).toBe(200);
    await eventually(
      'both replicas see the shadow',
      async () => (await Promise.all([0, 1].map(rollout))).every((r) => (r.rollout as { shadow: unknown }).shadow !== null),
      5000,
    );

    await waitJob(await submit(1, borderRows(400)));

    await eventually('the guard rolled back', async () => ((await rollout(0)).rollout as { shadow: unknown }).shadow === null, 20_000);
    const [latest] = (await call(1, 'GET', '/v1/models/iris/rollout/history?limit=1')).body.entries as {
      action: string;
      actor: unknown;
      reason: string;
    }[];
    expect(latest).toMatchObject({ action: 'auto-rollback', actor: { tenant: 'system', keyId: 'auto-rollback' } });
    expect(latest?.reason).toMatch(
      /^shadow version 1 agreed with the default on \d+\.\d+ % of \d+ rows \(less than minAgreement 0\.995\)$/,
    );
  }, 60_000);

  it(
    'when a new version is dropped into the repository, then it does not become the default while the rollout pins one; without ' +
      'the pin it does',
    async () => {
      expect((await put(0, { default: '2' })).status).toBe(200);
      addVersionCopy(models, 'iris', '1', '3');
      await eventually(
        'both replicas list version 3',
        async () => {
          const listed = await Promise.all([0, 1].map(async (i) => (await call(i, 'GET', '/v1/models/iris')).body));
          return listed.every((m) => (m.versions as { version: string }[]).some((v) => v.version === '3'));
        },
        10_000,
      );

      const pinned = await call(1, 'GET', '/v1/models/iris');
      const servedPinned = await waitJob(await submit(0, [[5.1, 3.5, 1.4, 0.2]]));
      expect((await put(1, {})).status).toBe(200);
      const unpinned = await call(0, 'GET', '/v1/models/iris');

      expect(pinned.body.defaultVersion).toBe('2');
      expect(servedPinned.model).toMatchObject({ version: '2' });
      expect(unpinned.body.defaultVersion).toBe('3');
    },
    60_000,
  );

  it('when an API process restarts, then the rollout and its history are still there', async () => {
    const before = (await call(0, 'GET', '/v1/models/iris/rollout/history?limit=1000')).body.entries as unknown[];
    await group.all[0]?.stop('SIGTERM');
    urls[0] = (await group.api(env)).url;

    const after = (await call(0, 'GET', '/v1/models/iris/rollout/history?limit=1000')).body.entries as unknown[];
    expect(after).toEqual(before);
    expect(after.length).toBeGreaterThanOrEqual(8);
    expect(await keysWithPrefix(client, `${env.REDIS_PREFIX}:rollout`)).toContain(`${env.REDIS_PREFIX}:rollout:{iris}:audit`);
  }, 60_000);
});
