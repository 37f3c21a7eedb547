import type { JobStatus } from '@onnx-batch/contracts';

/** One input file of a run: the job it became and where its results went. */
export interface RunFile {
  /** The input file, as `<input.dir>/<name>`. */
  input: string;
  /** The results file, as `<output.dir>/<name>`; null when the file produced none. */
  output: string | null;
  jobId: string | null;
  rows: number;
  failedRows: number;
  /** The job's final status, or `rejected` when no job was made (bad rows, unreadable file). */
  status: JobStatus | 'rejected';
  error?: string;
}

export type RunStatus = 'running' | 'completed' | 'failed';

/**
 * A run of a schedule: one per tick. Written to `<output.dir>/<runId>.summary.json` when it
 * ends, and kept in the run history (GET /v1/schedules/:name/runs).
 */
export interface RunSummary {
  schedule: string;
  /** `<schedule>.<tick as yyyymmddThhmmssZ>`: derived from the tick, so a retried tick has the same id. */
  runId: string;
  /** The tick this run is for (ISO 8601). */
  tick: string;
  startedAt: string;
  finishedAt: string | null;
  /** completed: every file's job completed; failed: any did not, or the run could not be made. */
  status: RunStatus;
  /** The summary file, as `<output.dir>/<runId>.summary.json`; null until written. */
  summary: string | null;
  files: RunFile[];
  error?: string;
}
