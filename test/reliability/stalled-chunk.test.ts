import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { runCli } from '../helpers/cli';
import { dropPrefix, keysWithPrefix, newRedis, testEnv, type TestEnv } from '../helpers/env';
import type { Spawned } from '../helpers/processes';
import { eventually, ProcessGroup, sleep } from '../helpers/reliability';

/**
 * A chunk that BullMQ fails outside the processor (here: its worker is killed with SIGKILL and
 * MAX_STALLED_COUNT is 0, so the next stall check fails it for good) still ends its job. A
 * one-chunk job has no finalize-batch parent, so nothing else would: it stayed `running` until
 * its TTL. Long polls, the CLI's `wait` and schedules all see the job end.
 */
const ROWS = 150_000;
const STALLED_INTERVAL_MS = 1000;
/** Lock lapse + two stall checks + a worker taking the failed job, with room for a loaded machine. */
const ENDS_WITHIN_MS = STALLED_INTERVAL_MS + 9000;

function spamNdjson(rows: number): string {
  const words = [
    'free',
    'offer',
    'meeting',
    'tomorrow',
    'click',
    'here',
    'invoice',
    'attached',
    'winner',
    'project',
    'lunch',
    'prize',
    'cash',
    'report',
  ];
  const lines: string[] = [];
  for (let i = 0; i < rows; i++) {
    let text = `message ${i}:`;
    for (let w = 0; w < 12; w++) text += ` ${words[(i * 7 + w * 3) % words.length] as string}`;
    lines.push(JSON.stringify({ text }));
  }
  return `${lines.join('\n')}\n`;
}

/** A 6-field cron that fires once, at the first whole second at least `aheadMs` from now (UTC). */
function cronOnceIn(aheadMs: number): string {
  const at = new Date(Math.ceil((Date.now() + aheadMs) / 1000) * 1000);
  return `${at.getUTCSeconds()} ${at.getUTCMinutes()} ${at.getUTCHours()} ${at.getUTCDate()} ${at.getUTCMonth() + 1} *`;
}

describe('reliability: a one-chunk job whose chunk stalls out', () => {
  const group = new ProcessGroup();
  const client: Redis = newRedis();
  let env: TestEnv;
  let url: string;
  let root: string;

  beforeAll(async () => {
    root = mkdtempSync(path.join(os.tmpdir(), 'onnx-batch-stalled-'));
    mkdirSync(path.join(root, 'in'));
    mkdirSync(path.join(root, 'out'));
    writeFileSync(path.join(root, 'in', 'mail.ndjson'), spamNdjson(ROWS));
    env = testEnv({
      CHUNK_SIZE: '1000000',
      MAX_STALLED_COUNT: '0',
      LOCK_DURATION_MS: '1000',
      STALLED_INTERVAL_MS: String(STALLED_INTERVAL_MS),
      RECOVERY_INTERVAL_MS: '1000',
      SCHEDULES_ROOT: root,
    });
    ({ url } = await group.api(env));
    await group.scheduler(env); // runs the schedule's tick
  }, 60_000);

  afterAll(async () => {
    await group.stopAll();
    await dropPrefix(client, env.REDIS_PREFIX);
    await client.quit();
    rmSync(root, { recursive: true, force: true });
  });

  it(
    'when the worker running it is killed mid-chunk, then the job ends failed within the stall interval plus a few seconds, and ' +
      'a long poll, `onnx-batch wait` and the schedule all see it',
    async () => {
      const first: Spawned = await group.worker(env);
      const schedule = {
        name: 'mail',
        cron: cronOnceIn(2000),
        timezone: 'UTC',
        model: 'spam',
        input: { dir: 'in', pattern: '*.ndjson' },
        output: { dir: 'out', format: 'ndjson' },
      };
      expect(
        (
          await fetch(`${url}/v1/schedules`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(schedule),
          })
        ).status,
      ).toBe(201);

      // The tick submits the file as one 150 000-row chunk; wait until the first worker runs it.
      let jobId = '';
      await eventually(
        "the schedule's job is running",
        async () => {
          for (const key of await keysWithPrefix(client, `${env.REDIS_PREFIX}:job`)) {
            if (/:(in|out):\d+$/.test(key)) continue;
            const [id, status] = await client.hmget(key, 'id', 'status');
            if (status === 'running' && id) jobId = id;
          }
          return jobId !== '';
        },
        60_000,
        50,
      );
      const longPoll = fetch(`${url}/v1/batch-result/${jobId}?wait=60`).then(async (r) => (await r.json()) as Record<string, unknown>);
      const cliWait = runCli(['wait', jobId, '-q'], { env: { ONNX_BATCH_URL: url }, timeoutMs: 60_000 });
      await group.worker(env); // a second worker, to notice the stall
      await sleep(200);

      await first.stop('SIGKILL');
      const killedAt = Date.now();

      const polled = await longPoll;
      const endedAfterMs = Date.now() - killedAt;
      expect(polled).toMatchObject({ jobId, status: 'failed', progress: { done: ROWS, total: ROWS, failed: ROWS } });
      expect((polled.error as { code: string }).code).toBe('OB_ERR_INFERENCE_FAILED');
      expect(endedAfterMs).toBeLessThan(ENDS_WITHIN_MS);
      const waited = await cliWait;
      expect(waited.code).toBe(4); // the CLI's exit code for a failed job
      await eventually(
        'the schedule run records the failed job',
        async () => {
          const runs = (await (await fetch(`${url}/v1/schedules/mail/runs`)).json()) as {
            runs: { status: string; files: { jobId: string; status: string }[] }[];
          };
          const file = runs.runs[0]?.files[0];
          return runs.runs[0]?.status !== 'running' && file?.jobId === jobId && file.status === 'failed';
        },
        30_000,
        200,
      );
    },
    120_000,
  );
});
