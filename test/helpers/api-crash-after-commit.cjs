// An API process that dies (SIGKILL, no cleanup) right after it commits a job and before it
// queues it: the worst moment of a submit. Spawned by test/reliability/commit-crash.test.ts.
const { runService } = require('@onnx-batch/shared');
const { startApiService } = require('@onnx-batch/api');

runService(
  'api',
  (config, logger) => startApiService(config, logger, { submitterHooks: { afterCommit: () => process.kill(process.pid, 'SIGKILL') } }),
  'requests in flight',
);
