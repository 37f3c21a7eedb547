// Cost of drift counting on the hot path: measureChunk + binning every statistic of every row, on
// chunks encoded and decoded by the service's codec, with the shipped baselines.
// Run after `npm run build`:  node scripts/bench-drift-measure.mjs
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import shared from '@onnx-batch/shared';

const { ChunkEncoder, RowValidator, binIndex, countChunk, decodeChunk, loadBaseline, measureChunk } = shared;
const MODELS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'models');

function chunkOf(manifest, rows) {
  const validator = new RowValidator(manifest);
  const encoder = new ChunkEncoder(manifest, rows.length);
  for (const row of rows) {
    const problem = validator.check(row) ?? encoder.add(row);
    if (problem) throw new Error(JSON.stringify(problem));
  }
  return decodeChunk(encoder.finish());
}

function countInto(loaded, counts, values) {
  for (let s = 0; s < values.length; s++) {
    const edges = loaded.bins[s];
    const column = values[s];
    const bins = counts[s];
    for (let r = 0; r < column.length; r++) bins[binIndex(edges, column[r])]++;
  }
}

function time(label, rows, fn) {
  for (let i = 0; i < 20; i++) fn(); // warm up
  const samples = [];
  for (let round = 0; round < 7; round++) {
    const reps = 50;
    const start = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) fn();
    samples.push(Number(process.hrtime.bigint() - start) / 1e3 / reps);
  }
  samples.sort((a, b) => a - b);
  const median = samples[3];
  console.log(`${label.padEnd(44)} ${median.toFixed(1).padStart(9)} µs/chunk  ${((median * 1000) / rows).toFixed(1).padStart(8)} ns/row`);
}

async function bench(name, version, rows) {
  const dir = path.join(MODELS, name, version);
  const manifest = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const loaded = await loadBaseline(dir, manifest);
  const chunk = chunkOf(manifest, rows);
  const counts = loaded.bins.map((b) => new Float64Array(b.length + 1));
  time(`${name} ${version}: measureChunk (${rows.length} rows)`, rows.length, () => measureChunk(loaded.plan, chunk));
  time(`${name} ${version}: measureChunk + binning`, rows.length, () => countInto(loaded, counts, measureChunk(loaded.plan, chunk)));
  // What inference threads run: countChunk (oov on one row in OOV_EVERY), predictions left out.
  time(`${name} ${version}: countChunk`, rows.length, () => countChunk(loaded, chunk, undefined));
}

const golden = (name, version) => JSON.parse(readFileSync(path.join(MODELS, name, version, 'golden.json'), 'utf8')).inputs;
const repeat = (rows, n) => Array.from({ length: n }, (_, i) => rows[i % rows.length]);

await bench('iris', '2', repeat(golden('iris', '2'), 4000));
await bench('fashion', '1', repeat(golden('fashion', '1'), 256));
await bench('spam', '1', repeat(golden('spam', '1'), 400));
