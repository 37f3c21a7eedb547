export * from './prediction-log';
export * from './quality-counters';
export * from './quality-store';
