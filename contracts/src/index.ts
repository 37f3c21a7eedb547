/**
 * What an onnx-batch client and its server must agree on, and nothing else: no runtime
 * dependency, no Node API, so a client (the `onnx-batch` command, a nightly script) installs it
 * without ONNX Runtime, BullMQ or a Redis client.
 */
export * from './errors';
export * from './evaluation';
export * from './job-status';
export * from './manifest';
export * from './quality';
export * from './rollout';
export * from './rollout-report';
export * from './status-document';
