import type { Worker } from 'bullmq';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { METRIC_PREFIX, type JobRecord, type ModelVersion } from '@onnx-batch/shared';
import type { ChunkContext, ChunkListener } from './chunk-processor';
import type { ChunkOutcome } from './inference-protocol';

/** Job latency, creation to end: 10 ms … 2 h (a 1-row predict to a million-row batch). */
const JOB_DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];
/** One `session.run()`: 100 µs … 30 s. */
const INFERENCE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Rows in one `session.run()` (dynamic batching joins chunks up to MAX_BATCH_ROWS). */
const BATCH_ROW_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536];

/**
 * A worker process's Prometheus metrics: jobs completed and failed with their end-to-end
 * latency, rows recorded, and per `session.run()` its duration and rows. Labels are model and
 * version (never a job id), so series stay few. Each process has its own registry.
 */
export class WorkerMetrics implements ChunkListener {
  readonly registry = new Registry();
  private readonly completed: Counter<'model' | 'version'>;
  private readonly failed: Counter<'model' | 'version'>;
  private readonly rows: Counter<'model' | 'version' | 'outcome'>;
  private readonly jobDuration: Histogram<'model' | 'version' | 'status'>;
  private readonly inferenceDuration: Histogram<'model' | 'version'>;
  private readonly batchRows: Histogram<'model' | 'version'>;
  private readonly attemptsFailed: Counter<'queue'>;
  private backlog: () => number = () => 0;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
    this.completed = new Counter({
      name: `${METRIC_PREFIX}jobs_completed_total`,
      help: 'Jobs that finished as completed (some rows may have failed), by model and version.',
      labelNames: ['model', 'version'],
      registers,
    });
    this.failed = new Counter({
      name: `${METRIC_PREFIX}jobs_failed_total`,
      help: 'Jobs that finished as failed (no row could be run), by model and version.',
      labelNames: ['model', 'version'],
      registers,
    });
    this.rows = new Counter({
      name: `${METRIC_PREFIX}rows_processed_total`,
      help: 'Rows whose results were recorded, by model, version and outcome (ok: a result; failed: a row error).',
      labelNames: ['model', 'version', 'outcome'],
      registers,
    });
    this.jobDuration = new Histogram({
      name: `${METRIC_PREFIX}job_duration_seconds`,
      help: 'End-to-end latency of a job, from its creation (submit) to its end (last chunk recorded).',
      labelNames: ['model', 'version', 'status'],
      buckets: JOB_DURATION_BUCKETS,
      registers,
    });
    this.inferenceDuration = new Histogram({
      name: `${METRIC_PREFIX}inference_duration_seconds`,
      help: 'Time spent in one ONNX Runtime session.run() (one dynamic batch), by model and version.',
      labelNames: ['model', 'version'],
      buckets: INFERENCE_BUCKETS,
      registers,
    });
    this.batchRows = new Histogram({
      name: `${METRIC_PREFIX}inference_batch_rows`,
      help: 'Rows in one session.run() (several small chunks are joined by dynamic batching), by model and version.',
      labelNames: ['model', 'version'],
      buckets: BATCH_ROW_BUCKETS,
      registers,
    });
    this.attemptsFailed = new Counter({
      name: `${METRIC_PREFIX}job_attempts_failed_total`,
      help: 'BullMQ job attempts that threw and will be retried (a chunk retried after an inference or Redis error), by queue.',
      labelNames: ['queue'],
      registers,
    });
    const backlogGauge: Gauge = new Gauge({
      name: `${METRIC_PREFIX}inference_backlog_rows`,
      help: 'Rows of this worker process waiting for a free inference thread.',
      registers,
      collect: () => backlogGauge.set(this.backlog()),
    });
  }

  /** One `session.run()` finished: `outcomes` are the chunks it ran (they share its duration and rows). */
  readonly observeBatch = (model: ModelVersion, outcomes: readonly ChunkOutcome[]): void => {
    const first = outcomes[0];
    if (!first) return;
    const labels = { model: model.manifest.name, version: model.manifest.version };
    this.inferenceDuration.observe(labels, first.inferenceMs / 1000);
    this.batchRows.observe(labels, first.batchRows);
  };

  /** Reads the inference backlog at scrape time. */
  observeBacklog(backlog: () => number): void {
    this.backlog = backlog;
  }

  /** Counts failed attempts (those BullMQ will retry) of these workers. */
  observeWorkers(workers: readonly Worker[]): void {
    for (const worker of workers) worker.on('failed', () => this.attemptsFailed.inc({ queue: worker.name }));
  }

  /** A chunk's results were recorded (once): its rows, by outcome. */
  chunkRecorded(context: ChunkContext, outcome: ChunkOutcome): void {
    const labels = { model: context.model, version: context.version };
    if (outcome.rows - outcome.failedRows > 0) this.rows.inc({ ...labels, outcome: 'ok' }, outcome.rows - outcome.failedRows);
    if (outcome.failedRows > 0) this.rows.inc({ ...labels, outcome: 'failed' }, outcome.failedRows);
  }

  /** A chunk that could not be run was recorded as failed rows. */
  chunkFailed(record: JobRecord, rows: number): void {
    if (rows > 0) this.rows.inc({ model: record.model, version: record.version, outcome: 'failed' }, rows);
  }

  /** A job finished: its status and its latency from creation to end. */
  jobFinished(record: JobRecord): void {
    const labels = { model: record.model, version: record.version };
    if (record.status === 'completed') this.completed.inc(labels);
    else if (record.status === 'failed') this.failed.inc(labels);
    const created = Date.parse(record.createdAt);
    const finished = Date.parse(record.finishedAt ?? '');
    if (Number.isFinite(created) && Number.isFinite(finished)) {
      this.jobDuration.observe({ ...labels, status: record.status }, Math.max(0, finished - created) / 1000);
    }
  }

  close(): void {
    this.registry.clear();
  }
}
