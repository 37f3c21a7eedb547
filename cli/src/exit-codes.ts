import { CommanderError } from 'commander';
import type { JobStatus } from '@onnx-batch/contracts';
import { OnnxBatchError, UnreachableError, UsageError, WaitTimeoutError } from './errors';

/** Exit codes of `onnx-batch`, one per outcome a script may want to tell apart (cli/README.md lists them). */
export const ExitCode = {
  /** The command did what it was asked; for `submit --wait` / `wait`, the job completed. */
  Ok: 0,
  /** Anything else: a server error (5xx), a local I/O failure, a bug. */
  Error: 1,
  /** The command line is wrong: unknown option, missing argument, unreadable or unrecognised input file. */
  Usage: 2,
  /** The server refused the request (a 4xx problem): invalid rows, unknown model or job, bad key… */
  Rejected: 3,
  /** The job finished as `failed`. */
  JobFailed: 4,
  /** The job finished as `cancelled`. */
  JobCancelled: 5,
  /** `--timeout` passed before the job finished (the job goes on). */
  Timeout: 6,
  /** The server could not be reached (or the connection broke). */
  Unreachable: 7,
  /** `evaluate --wait`: the evaluation's verdict is `fail` or `insufficient-data` (the quality gate would not pass it). */
  NotPassed: 8,
  /** Interrupted (SIGINT / SIGTERM) while waiting; the job goes on. 128 + SIGINT, as shells do. */
  Interrupted: 130,
} as const;

export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Exit code of a finished job's status (`queued`/`running` never reach here). */
export function exitCodeForStatus(status: JobStatus): ExitCode {
  switch (status) {
    case 'completed':
      return ExitCode.Ok;
    case 'failed':
      return ExitCode.JobFailed;
    case 'cancelled':
      return ExitCode.JobCancelled;
    case 'queued':
    case 'running':
      return ExitCode.Error;
  }
}

/** Exit code of an error that ended a command. */
export function exitCodeForError(error: unknown): ExitCode {
  if (error instanceof CommanderError) return error.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
  if (error instanceof UsageError) return ExitCode.Usage;
  if (error instanceof OnnxBatchError) return error.isClientError ? ExitCode.Rejected : ExitCode.Error;
  if (error instanceof UnreachableError) return ExitCode.Unreachable;
  if (error instanceof WaitTimeoutError) return ExitCode.Timeout;
  return ExitCode.Error;
}
