import type { DriftRecorder, ModelRepository } from '@onnx-batch/shared';
import type { ChunkContext, ChunkListener } from './chunk-processor';
import type { ChunkOutcome } from './inference-protocol';

/**
 * A worker's part in drift statistics: the counts an inference thread made of a chunk it ran
 * (ChunkOutcome.drift) go to the recorder once the chunk's results are recorded, under the
 * version that served it. Counts binned by another baseline than the version's current one (it
 * changed on disk between run and record) are dropped.
 */
export class DriftObserver implements ChunkListener {
  constructor(
    private readonly repository: ModelRepository,
    private readonly recorder: DriftRecorder,
  ) {}

  chunkRecorded(context: ChunkContext, outcome: ChunkOutcome): void {
    const drift = outcome.drift;
    if (!drift) return;
    // Absent when the version has no baseline or left the repository meanwhile.
    const baseline = this.repository.find(context.model, context.version)?.baseline;
    if (baseline?.digest !== drift.digest) return;
    this.recorder.add(context.model, context.version, baseline, drift.counts);
  }
}
