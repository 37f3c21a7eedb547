// One thread of the raw ONNX Runtime measurement: its own InferenceSession (options as the
// service's inference threads use them), `session.run()` on ready tensors in a loop until the
// deadline the main thread sends.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const { requireFrom, modelPath, feeds: feedData, outputs, rows, intraOpThreads } = workerData;
const ort = createRequire(requireFrom)('onnxruntime-node');

const session = await ort.InferenceSession.create(modelPath, {
  intraOpNumThreads: intraOpThreads,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const feeds = {};
for (const f of feedData) feeds[f.name] = new ort.Tensor(f.dtype, f.data, f.dims);
for (let i = 0; i < 3; i++) await session.run(feeds, outputs); // warm-up
parentPort.postMessage({ type: 'ready' });

parentPort.once('message', async ({ endAt }) => {
  let runs = 0;
  const started = performance.now();
  while (Date.now() < endAt) {
    await session.run(feeds, outputs);
    runs++;
  }
  const ms = performance.now() - started;
  await session.release();
  parentPort.postMessage({ type: 'done', runs, rows: runs * rows, ms });
});
