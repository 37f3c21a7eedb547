import { runService } from '@onnx-batch/shared';
import { startWorkerService } from './worker-service';

// Chunks not finished within the grace period are retried by another worker.
runService('worker', startWorkerService, 'chunks in hand');
