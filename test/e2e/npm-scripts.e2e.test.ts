import { dropPrefixAndQuit, testEnv } from '../helpers/env';
import { isAlive, spawnNpmScript, type Spawned } from '../helpers/processes';
import { eventually } from '../helpers/reliability';

/**
 * The README runs the service with `npm start`, `npm run api`, `npm run worker` and `npm run
 * scheduler`. A supervisor (or `kill`) stopping one sends SIGTERM to npm: npm passes it to its
 * script's process, so that process must be the service itself, not a shell that dies and leaves
 * the service running without a parent.
 */
const SCRIPTS = [
  { script: 'start', ready: ['api listening', 'worker started', 'scheduler started'] },
  { script: 'api', ready: ['api listening'] },
  { script: 'worker', ready: ['worker started'] },
  { script: 'scheduler', ready: ['scheduler started'] },
];

describe('the npm scripts that run the service', () => {
  const env = testEnv({ API_PROCESSES: '1', WORKERS: '1', LOG_LEVEL: 'info', SHUTDOWN_GRACE_MS: '5000' });
  const started: Spawned[] = [];
  const servicePids: number[] = [];

  afterAll(async () => {
    for (const pid of servicePids.filter(isAlive)) process.kill(pid, 'SIGKILL');
    for (const proc of started) await proc.stop('SIGKILL');
    await dropPrefixAndQuit(env.REDIS_PREFIX);
  });

  it.each(SCRIPTS)(
    'when `npm run $script` is sent SIGTERM, then every process it started stops',
    async ({ script, ready }) => {
      const proc = spawnNpmScript(script, env);
      started.push(proc);
      await eventually(
        `npm run ${script} logs ${ready.join(', ')}`,
        () => ready.every((message) => proc.lines((l) => l.message === message).length > 0),
        60_000,
      );
      const pids = proc.lines((l) => ready.includes(String(l.message))).map((l) => l.pid as number);
      servicePids.push(...pids);

      await proc.stop('SIGTERM');

      await eventually(`the processes of npm run ${script} exit`, () => pids.every((pid) => !isAlive(pid)), 15_000);
      expect(pids.filter(isAlive)).toEqual([]);
    },
    90_000,
  );
});
