import type { ModelManifest } from '@onnx-batch/contracts';
import {
  bucketOf,
  inShadowSample,
  qualityKindOf,
  type JobRecord,
  type Logger,
  type ModelRepository,
  type ModelVersion,
  type QualityStore,
  type RolloutStatsRecorder,
  type RolloutStore,
} from '@onnx-batch/shared';
import type { ChunkContext, ChunkListener } from './chunk-processor';
import type { InferencePool } from './inference-pool';
import type { ChunkOutcome, RowOutputs } from './inference-protocol';

/** Shadow chunks one worker process runs at once; more are skipped (and counted), never queued without bound. */
const MAX_SHADOWS_IN_FLIGHT = 4;

/**
 * A worker's part in rollouts: counts canary and default chunks and jobs per rollout revision,
 * and runs a sample of default-served chunks again on the shadow version, off the result path
 * (after the chunk's results are recorded, so the job's results and latency are untouched),
 * comparing answers row by row. Counters go to Redis in batches (RolloutStatsRecorder).
 */
export class RolloutObserver implements ChunkListener {
  private shadowsInFlight = 0;

  constructor(
    private readonly rollouts: RolloutStore,
    private readonly recorder: RolloutStatsRecorder,
    private readonly repository: ModelRepository,
    private readonly pool: InferencePool,
    private readonly logger: Logger,
    /** Keeps the shadow's predictions for labels, so ground truth judges the shadow version too. */
    private readonly quality: QualityStore | null = null,
  ) {}

  /** The shadow version this chunk should also run on, or null (decided before the run, so its input can be kept). */
  async shadowFor(context: ChunkContext): Promise<ModelVersion | null> {
    if (context.route !== 'default') return null;
    const rollout = await this.rollouts.get(context.model);
    if (!rollout.shadow || rollout.shadow.version === context.version || !inShadowSample(rollout, context.jobId, context.chunk))
      return null;
    // Null when the shadow version left the repository: nothing to compare with.
    return this.repository.find(context.model, rollout.shadow.version);
  }

  /** A chunk's results were recorded (once): count it for the canary report, and run its shadow. */
  chunkRecorded(context: ChunkContext, outcome: ChunkOutcome, shadow: { model: ModelVersion; input: Buffer } | null): void {
    if (shadow) this.runShadow(context, shadow.model, shadow.input, outcome);
    if (context.route === 'pinned' || context.rolloutRevision === 0) return;
    const add = (field: string, by: number): void =>
      this.recorder.add(context.model, context.rolloutRevision, `canary:${context.route}:${field}`, by);
    add('rows', outcome.rows);
    if (outcome.failedRows > 0) add('failed', outcome.failedRows);
    add(`us:${bucketOf(usPerRow(outcome))}`, outcome.rows);
  }

  /** A job finished: count it and its duration for the canary report. */
  jobFinished(record: JobRecord): void {
    if (record.route === 'pinned' || record.rolloutRevision === 0) return;
    const duration = Date.parse(record.finishedAt ?? '') - Date.parse(record.createdAt);
    const add = (field: string, by: number): void =>
      this.recorder.add(record.model, record.rolloutRevision, `canary:${record.route}:${field}`, by);
    add('jobs', 1);
    if (Number.isFinite(duration)) add(`jobms:${bucketOf(Math.max(0, duration))}`, 1);
  }

  /**
   * Runs `input` (a copy of the chunk's input) on the shadow version in the background and
   * compares its answers with the default's. Never throws; skipped when too many are in flight.
   */
  private runShadow(context: ChunkContext, shadow: ModelVersion, input: Buffer, primary: ChunkOutcome): void {
    void this.rollouts.get(context.model).then((rollout) => {
      const revision = rollout.revision;
      if (this.shadowsInFlight >= MAX_SHADOWS_IN_FLIGHT) {
        this.recorder.add(context.model, revision, 'shadow:skipped', primary.rows);
        return;
      }
      this.shadowsInFlight++;
      return this.pool
        .run(shadow, input)
        .then(async (outcome) => {
          this.compare(context.model, revision, shadow.manifest, primary, outcome);
          await this.keepShadow(context, shadow.manifest, outcome);
        })
        .catch((error: unknown) => {
          this.recorder.add(context.model, revision, 'shadow:failed:shadow', primary.rows);
          this.logger.warn('shadow run failed', {
            jobId: context.jobId,
            chunk: context.chunk,
            shadow: shadow.manifest.version,
            error: String(error),
          });
        })
        .finally(() => {
          this.shadowsInFlight--;
        });
    });
  }

  /** The shadow's predictions of the chunk, kept for labels (classifiers and one-target regression). */
  private async keepShadow(context: ChunkContext, manifest: ModelManifest, outcome: ChunkOutcome): Promise<void> {
    const kind = qualityKindOf(manifest);
    if (!this.quality || !outcome.output || !kind) return;
    await this.quality
      .recordShadowChunk({
        model: context.model,
        jobId: context.jobId,
        version: manifest.version,
        kind,
        chunk: context.chunk,
        rows: outcome.rows,
        values: outcome.output.data,
        width: outcome.output.width,
      })
      .catch((error: unknown) => this.logger.warn('could not keep the shadow predictions for labels', { error: String(error) }));
  }

  private compare(model: string, revision: number, manifest: ModelManifest, primary: ChunkOutcome, shadow: ChunkOutcome): void {
    const add = (field: string, by: number): void => this.recorder.add(model, revision, `shadow:${field}`, by);
    const comparison = compareOutputs(primary.output, shadow.output, manifest.result.kind === 'classification');
    add('rows', comparison.rows);
    if (manifest.result.kind === 'classification') add('agree', comparison.agree);
    add('absdiff', comparison.absDiff);
    add('failed:default', comparison.failedDefault);
    add('failed:shadow', comparison.failedShadow);
    add(`us:default:${bucketOf(usPerRow(primary))}`, primary.rows);
    add(`us:shadow:${bucketOf(usPerRow(shadow))}`, shadow.rows);
  }
}

/** Inference microseconds per row of the batch a chunk ran in. */
function usPerRow(outcome: ChunkOutcome): number {
  return outcome.batchRows > 0 ? (outcome.inferenceMs * 1000) / outcome.batchRows : 0;
}

/**
 * Row by row: rows both sides answered, how many got the same label (argmax; classification),
 * the sum over those rows of the mean absolute difference of their outputs, and the rows that
 * failed on each side (NaN outputs).
 */
export function compareOutputs(
  primary: RowOutputs | undefined,
  shadow: RowOutputs | undefined,
  labels: boolean,
): { rows: number; agree: number; absDiff: number; failedDefault: number; failedShadow: number } {
  const out = { rows: 0, agree: 0, absDiff: 0, failedDefault: 0, failedShadow: 0 };
  if (!primary || !shadow || primary.width !== shadow.width) return out;
  const width = primary.width;
  const rows = Math.min(primary.data.length, shadow.data.length) / width;
  for (let row = 0; row < rows; row++) {
    const base = row * width;
    const p = primary.data;
    const q = shadow.data;
    const failedP = Number.isNaN(p[base]);
    const failedQ = Number.isNaN(q[base]);
    if (failedP) out.failedDefault++;
    if (failedQ) out.failedShadow++;
    if (failedP || failedQ) continue;
    let diff = 0;
    let bestP = 0;
    let bestQ = 0;
    for (let k = 0; k < width; k++) {
      const a = p[base + k] as number;
      const b = q[base + k] as number;
      diff += Math.abs(a - b);
      if (a > (p[base + bestP] as number)) bestP = k;
      if (b > (q[base + bestQ] as number)) bestQ = k;
    }
    out.rows++;
    out.absDiff += diff / width;
    if (labels && bestP === bestQ) out.agree++;
  }
  return out;
}
