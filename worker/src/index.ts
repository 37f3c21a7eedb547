export * from './chunk-processor';
export * from './inference-pool';
export * from './inference-protocol';
export * from './worker-service';
