// The ceiling for `npm run bench`: raw in-process ONNX Runtime throughput on the same model and
// rows as the service, one InferenceSession per worker thread, `session.run()` on ready tensors
// at the service's chunk size. Also: finding a model's default version and its chunk size.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/**
 * A model's default version as the service picks it: the one whose manifest says
 * `"default": true`, else the highest version number.
 */
export function loadDefaultModel(modelsDir, name) {
  const dir = path.join(modelsDir, name);
  const versions = readdirSync(dir)
    .filter((v) => /^[0-9]+$/.test(v))
    .map((v) => {
      try {
        return { version: v, manifest: JSON.parse(readFileSync(path.join(dir, v, 'model.json'), 'utf8')) };
      } catch {
        return null;
      }
    })
    .filter(Boolean)
    .sort((a, b) => Number(a.version) - Number(b.version));
  if (versions.length === 0) throw new Error(`no version of model '${name}' under ${dir}`);
  const chosen = versions.find((v) => v.manifest.default === true) ?? versions[versions.length - 1];
  return { name, version: chosen.version, manifest: chosen.manifest, modelPath: path.join(dir, chosen.version, 'model.onnx') };
}

/** The input rows of a model version's golden.json (as its training script wrote them). */
export function goldenInputs(model) {
  return JSON.parse(readFileSync(path.join(path.dirname(model.modelPath), 'golden.json'), 'utf8')).inputs;
}

/** The outputs the service fetches from a session (as shared fetchedOutputs()). */
export function fetchedOutputs(manifest) {
  const spec = manifest.result;
  if (spec.kind === 'tensor') return spec.outputs ?? manifest.outputs.map((o) => o.name);
  return [spec.output];
}

/**
 * Bytes one row takes in the service's compact chunk form (shared/src/codec/chunk-codec.ts):
 * byte tensors 1 byte an element, float32/int32 4, float64/int64 8; strings are not counted.
 */
export function storedBytesPerRow(manifest) {
  const features = new Map(manifest.features.map((f) => [f.name, f]));
  let bytes = 0;
  for (const input of manifest.inputs) {
    const perRow = input.shape.slice(1).reduce((a, b) => a * b, 1);
    if (input.dtype === 'string') continue;
    const allBytes = input.features.every((name) => features.get(name)?.base64 === 'uint8');
    bytes += perRow * (allBytes ? 1 : { float32: 4, int32: 4, float64: 8, int64: 8 }[input.dtype]);
  }
  return bytes;
}

function featureSize(feature) {
  return feature.type === 'tensor' ? feature.shape.reduce((a, b) => a * b, 1) : 1;
}

function flatten(value, out) {
  if (Array.isArray(value)) for (const v of value) flatten(v, out);
  else out.push(value);
  return out;
}

/**
 * Graph inputs for `count` rows (array rows in manifest feature order, cycled), converted the
 * way the service converts them (byte tensors become the graph's float values, 0–255).
 */
export function buildFeeds(manifest, rows, count) {
  const featureIndex = new Map(manifest.features.map((f, i) => [f.name, i]));
  const features = new Map(manifest.features.map((f) => [f.name, f]));
  return manifest.inputs.map((input) => {
    const perRow = input.shape.slice(1).reduce((a, b) => a * b, 1);
    const dims = [count, ...input.shape.slice(1)];
    if (input.dtype === 'string') {
      const data = new Array(count * perRow);
      for (let r = 0; r < count; r++) {
        const row = rows[r % rows.length];
        input.features.forEach((name, k) => (data[r * perRow + k] = String(row[featureIndex.get(name)])));
      }
      return { name: input.name, dtype: 'string', data, dims };
    }
    const Array_ = { float32: Float32Array, float64: Float64Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array }[
      input.dtype
    ];
    if (!Array_) throw new Error(`input ${input.name}: dtype ${input.dtype} is not handled by the raw measurement`);
    const data = new Array_(count * perRow);
    for (let r = 0; r < count; r++) {
      const row = rows[r % rows.length];
      let offset = r * perRow;
      for (const name of input.features) {
        const feature = features.get(name);
        const value = row[featureIndex.get(name)];
        const values = typeof value === 'string' && feature.base64 === 'uint8' ? Buffer.from(value, 'base64') : flatten(value, []);
        if (values.length !== featureSize(feature))
          throw new Error(`feature ${name}: ${values.length} values, expected ${featureSize(feature)}`);
        for (const v of values) data[offset++] = input.dtype === 'int64' ? BigInt(Math.trunc(v)) : v;
      }
    }
    return { name: input.name, dtype: input.dtype, data, dims };
  });
}

/**
 * Rows/s of `session.run()` at batch size `batch` with `threads` worker threads (one session
 * each, `intraOpThreads` each), all running for `seconds` at once.
 */
export async function measureRaw({ requireFrom, model, rows, batch, threads, intraOpThreads = 1, seconds = 2.5 }) {
  const feeds = buildFeeds(model.manifest, rows, batch);
  const outputs = fetchedOutputs(model.manifest);
  const workers = [];
  try {
    const ready = [];
    for (let t = 0; t < threads; t++) {
      const worker = new Worker(new URL('./bench-raw-thread.mjs', import.meta.url), {
        workerData: { requireFrom, modelPath: model.modelPath, feeds, outputs, rows: batch, intraOpThreads },
      });
      workers.push(worker);
      ready.push(nextMessage(worker, 'ready'));
    }
    await Promise.all(ready);
    const done = workers.map((w) => nextMessage(w, 'done'));
    const endAt = Date.now() + seconds * 1000;
    for (const w of workers) w.postMessage({ endAt });
    const results = await Promise.all(done);
    const perThread = results.map((r) => r.rows / (r.ms / 1000));
    const runs = results.reduce((n, r) => n + r.runs, 0);
    const ms = Math.max(...results.map((r) => r.ms));
    return {
      model: `${model.name}@${model.version}`,
      batch,
      threads,
      intraOpThreads,
      outputs,
      seconds: ms / 1000,
      runs,
      rowsPerSecond: perThread.reduce((a, b) => a + b, 0),
      rowsPerSecondPerThread: perThread,
      msPerRun: (ms * threads) / runs,
    };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

function nextMessage(worker, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (message) => {
      if (message.type !== type) return;
      cleanup();
      resolve(message);
    };
    const onError = (error) => {
      cleanup();
      reject(error);
    };
    const onExit = (code) => {
      cleanup();
      reject(new Error(`raw ONNX Runtime thread exited with code ${code} before '${type}'`));
    };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
