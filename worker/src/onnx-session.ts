import * as ort from 'onnxruntime-node';
import type { ModelManifest } from '@onnx-batch/contracts';
import { buildFeeds, fetchedOutputs, type DecodedChunk, type OutputData } from '@onnx-batch/shared';

/**
 * How the worker opens and runs a model: one place for the inference threads and for the
 * baseline command, whose predictions must be the ones the service serves.
 */
export function createSession(modelPath: string, intraOpThreads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(modelPath, {
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
}

/** Runs decoded chunks (one batch) through a session: the outputs the manifest's result reads, and how long run() took. */
export async function runSession(
  session: ort.InferenceSession,
  manifest: ModelManifest,
  chunks: DecodedChunk[],
): Promise<{ outputs: Map<string, OutputData>; ms: number }> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, feed] of buildFeeds(manifest, chunks)) feeds[name] = new ort.Tensor(feed.dtype, feed.data, feed.dims);
  const started = performance.now();
  const result = await session.run(feeds, fetchedOutputs(manifest));
  const ms = performance.now() - started;
  const outputs = new Map<string, OutputData>();
  for (const [name, value] of Object.entries(result)) outputs.set(name, { data: value.data, dims: value.dims });
  return { outputs, ms };
}
