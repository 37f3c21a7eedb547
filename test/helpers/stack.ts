import { startApiService, type ApiService } from '@onnx-batch/api';
import { createLogger, type Config } from '@onnx-batch/shared';
import { startWorkerService, type WorkerService } from '@onnx-batch/worker';
import { dropPrefix, newRedis, testConfig } from './env';

export interface Stack {
  config: Config;
  api: ApiService;
  worker: WorkerService | null;
  url: string;
  close(): Promise<void>;
}

/**
 * The API and (optionally) a worker in this process, on real Redis with a private key prefix,
 * real models and real inference threads. Everything it created in Redis is removed on close.
 */
export async function startStack(overrides: Record<string, string> = {}, withWorker = true): Promise<Stack> {
  const config = testConfig(overrides);
  const logger = createLogger(config.LOG_LEVEL, 'test');
  const api = await startApiService(config, logger);
  const worker = withWorker ? await startWorkerService(config, logger) : null;
  return {
    config,
    api,
    worker,
    url: api.url,
    async close() {
      await worker?.close();
      await api.close();
      const redis = newRedis();
      await dropPrefix(redis, config.REDIS_PREFIX);
      await redis.quit();
    },
  };
}
