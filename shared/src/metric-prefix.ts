/** Every Prometheus metric onnx-batch exports starts with this, process metrics included (API and workers alike). */
export const METRIC_PREFIX = 'onnx_batch_';
