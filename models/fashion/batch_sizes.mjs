// Per-image inference time of the fashion CNN by batch size, with one intra-op thread (as a worker
// runs it): the largest batch no slower per image than a chunk alone is the manifest's
// `maxBatchRows`. Run: node models/fashion/batch_sizes.mjs [version]   (loopback only, ~20 s)
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const ort = require('onnxruntime-node');
const version = process.argv[2] ?? '1';
const dir = path.join(path.dirname(new URL(import.meta.url).pathname), version);
const manifest = require(path.join(dir, 'model.json'));
const input = manifest.inputs[0];
const session = await ort.InferenceSession.create(path.join(dir, 'model.onnx'), {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  executionMode: 'sequential',
  graphOptimizationLevel: 'all',
});
const tensor = (rows) => {
  const n = rows * 784;
  const data = input.dtype === 'uint8' ? new Uint8Array(n) : new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (i * 2654435761) % 256;
  return new ort.Tensor(input.dtype, data, [rows, 1, 28, 28]);
};
const results = [];
for (const batch of [64, 128, 256, 512, 1024, 2048]) {
  const feeds = { [input.name]: tensor(batch) };
  await session.run(feeds); // warm-up
  const runs = Math.max(3, Math.round(8192 / batch));
  let best = Infinity;
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    for (let i = 0; i < runs; i++) await session.run(feeds);
    best = Math.min(best, (performance.now() - started) / (runs * batch));
  }
  results.push({ batch, usPerImage: Math.round(best * 1000 * 10) / 10, imagesPerSecond: Math.round(1000 / best) });
}
console.table(results);
