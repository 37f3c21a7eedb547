import http from 'node:http';
import path from 'node:path';
import { dropPrefix, newRedis, ROOT, testEnv } from '../helpers/env';
import { isAlive, spawnService, type Spawned } from '../helpers/processes';
import { eventually } from '../helpers/reliability';

/**
 * The README's quick start: `npm start` (scripts/start.mjs) runs API_PROCESSES API processes
 * sharing PORT, WORKERS worker processes and one scheduler process, and SIGTERM stops them all.
 */
function get(url: string, requestId: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    // A connection per request, so the API's primary hands them to its processes in turn.
    http
      .get(url, { agent: false, headers: { 'x-request-id': requestId } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }),
        );
      })
      .on('error', reject);
  });
}

describe('npm start with API_PROCESSES', () => {
  const env = testEnv({ API_PROCESSES: '2', WORKERS: '1', LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '5000' });
  let start: Spawned | undefined;

  afterAll(async () => {
    await start?.stop('SIGKILL');
    const redis = newRedis();
    await dropPrefix(redis, env.REDIS_PREFIX);
    await redis.quit();
  });

  it(
    'when npm start runs with API_PROCESSES=2 and WORKERS=1, then two API processes serve one port, a job completes, a ' +
      'scheduler runs beside them, and SIGTERM stops every process',
    async () => {
      start = spawnService('api', env, path.join(ROOT, 'scripts', 'start.mjs'));
      const proc = start;
      await eventually(
        'two API processes listen, a worker takes work and a scheduler runs',
        () =>
          proc.lines((l) => l.message === 'api listening').length === 2 &&
          proc.lines((l) => l.message === 'worker started').length === 1 &&
          proc.lines((l) => l.message === 'scheduler started').length === 1,
        45_000,
      );
      const apiPids = proc.lines((l) => l.message === 'api listening').map((l) => l.pid as number);
      const workerPid = proc.lines((l) => l.message === 'worker started')[0]?.pid as number;
      const schedulerPid = proc.lines((l) => l.message === 'scheduler started')[0]?.pid as number;
      const url = String(proc.lines((l) => l.message === 'api listening')[0]?.url);

      const submitted = await fetch(`${url}/v1/batch-predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'iris', inputs: [[6.7, 3.0, 5.2, 2.3]] }),
      });
      const { jobId } = (await submitted.json()) as { jobId: string };
      const polls = [];
      for (let i = 0; i < 4; i++) polls.push(await get(`${url}/v1/batch-result/${jobId}?wait=10`, `npm-start-${i}`));
      await eventually(
        'every poll is logged',
        () => proc.lines((l) => l.message === 'request' && String(l.requestId).startsWith('npm-start-')).length === 4,
        5000,
        20,
      );
      const servedBy = new Set(
        proc.lines((l) => l.message === 'request' && String(l.requestId).startsWith('npm-start-')).map((l) => l.pid),
      );
      const code = await proc.stop('SIGTERM');

      expect(proc.lines((l) => l.message === 'onnx-batch is starting')[0]).toMatchObject({ apiProcesses: 2, workers: 1, schedulers: 1 });
      expect(new Set(apiPids).size).toBe(2);
      expect(polls.map((p) => [p.status, p.body.status])).toEqual(Array(4).fill([200, 'completed']));
      expect((polls[0]?.body.results as { label: string }[])[0]?.label).toBe('virginica');
      expect(servedBy).toEqual(new Set(apiPids));
      expect(code).toBe(0);
      expect([...apiPids, workerPid, schedulerPid].filter(isAlive)).toEqual([]);
    },
    90_000,
  );
});
