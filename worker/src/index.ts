export * from './chunk-processor';
export * from './inference-pool';
export * from './inference-protocol';
export * from './worker-service';
export * from './webhook-deliverer';
export * from './metrics';
export * from './metrics-server';
