import cluster from 'node:cluster';
import { createLogger, loadConfig, runService, type Config } from '@onnx-batch/shared';
import { runApiCluster } from './api-cluster';
import { startApiService } from './api-service';

let config: Config | null = null;
try {
  config = loadConfig();
} catch {
  // runService reports a bad configuration, naming the variable, and exits 1.
}
if (config && config.API_PROCESSES > 1 && cluster.isPrimary) runApiCluster(config, createLogger(config.LOG_LEVEL, 'api'));
else runService('api', startApiService, 'requests in flight');
