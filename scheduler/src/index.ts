export * from './result-file';
export * from './schedule-runner';
export * from './schedule-worker';
export * from './scheduler-service';
export * from './tick-interrupted';
