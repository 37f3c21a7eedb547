import { runService } from '@onnx-batch/shared';
import { startSchedulerService } from './scheduler-service';

// On SIGTERM a tick stops at its next safe point and goes back to the queue; the grace covers
// finishing a results file being written (SCHEDULER_SHUTDOWN_GRACE_MS, not the API's and workers').
runService('scheduler', startSchedulerService, 'the schedule files being written', (config) => config.SCHEDULER_SHUTDOWN_GRACE_MS);
