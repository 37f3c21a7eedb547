// A schedule as the API writes it and the scheduler runs it. How a client's body becomes one
// (schema, cron and time-zone checks) is the API's business: api/src/schedules/schedule-definition.ts.
import { Minimatch } from 'minimatch';
import { ProblemError } from '@onnx-batch/contracts';

/** Schedule names appear in URLs, scheduler ids and file names: lower-case, no dots or slashes. */
export const SCHEDULE_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
/** How a schedule writes its results files: the `/results` download's CSV, NDJSON, Arrow IPC stream or Parquet. */
export const OUTPUT_FORMATS = ['csv', 'ndjson', 'parquet', 'arrow'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];
export const DEFAULT_TIMEZONE = 'UTC';

/** What a client sends to create (POST) or replace (PUT) a schedule. */
export interface ScheduleSpec {
  name: string;
  /** 5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first. */
  cron: string;
  /** IANA time zone the cron fields are read in. */
  timezone: string;
  model: string;
  /** Pinned model version; null = the model's default version at each run. */
  version: string | null;
  /** Files of `dir` whose names match the glob `pattern` are read at each run, sorted by name. */
  input: { dir: string; pattern: string };
  /** Where results and run summaries are written. */
  output: { dir: string; format: OutputFormat };
}

/** A schedule as stored: the spec, whose it is, and when it was written. */
export interface ScheduleDefinition extends ScheduleSpec {
  tenant: string;
  createdAt: string;
  updatedAt: string;
}

/** The 400 of a schedule field that is wrong (the body's, or a directory on disk). */
export function invalidField(field: string, message: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_REQUEST', `field '${field}' ${message}`, { errors: [{ field, message }] });
}

/** The matcher of a schedule's input glob (file names only; dot files never match). */
export function fileMatcher(pattern: string): Minimatch {
  return new Minimatch(pattern, { dot: false, nocomment: true, nonegate: true, noglobstar: true });
}
