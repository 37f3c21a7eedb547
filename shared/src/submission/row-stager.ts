import { ChunkEncoder } from '../codec/chunk-codec';
import type { ColumnBatch } from '../columnar/column-batch';
import type { Config } from '../config';
import { ProblemError, type FieldError } from '@onnx-batch/contracts';
import type { JobStore } from '../jobs/job-store';
import type { Logger } from '../logger';
import type { ModelVersion } from '../model-repository';
import type { JobAdmission } from './job-admission';

/** Most row errors reported for one rejected JSON batch; validation stops there. */
export const MAX_REPORTED_ROW_ERRORS = 20;
/**
 * Chunk writes in flight at once while staging: enough to keep Redis busy while the next chunk is
 * encoded, few enough to bound an upload's memory to a handful of chunks. Not a setting: it trades
 * nothing an operator could tune for (a larger window only holds more memory per upload).
 */
const STAGING_WINDOW = 4;

/** Where rows come from and how a bad one is named: row by row (JSON, NDJSON, CSV) or as typed columns (Arrow, Parquet). */
export type RowsToStage = RowObjectsToStage | ColumnsToStage;

/** Columnar input (Arrow, Parquet): validated a column at a time, errors name the column and the 0-based row. */
export interface ColumnsToStage {
  columns: AsyncIterable<ColumnBatch>;
  /** Input columns kept beside the predictions, in the order named (the readers fill ColumnBatch.passthrough so). */
  passthrough?: string[] | undefined;
}

export interface RowObjectsToStage {
  rows: Iterable<unknown> | AsyncIterable<unknown>;
  /**
   * How a row is named in errors: by 0-based index (JSON, up to MAX_REPORTED_ROW_ERRORS errors are
   * reported), or by the 1-based line the source is at (streamed input: the first error ends the
   * upload at once, so a client still sending hears about it).
   */
  rowLocation: 'row' | (() => number);
}

/** What staging an upload left in Redis: `chunks` inputs, the last one (`lastInput`) not written yet. */
export interface StagedUpload {
  rows: number;
  chunks: number;
  chunkSize: number;
  /** The last chunk, held back so the commit can write it in its own step (a 1-row job is one script). */
  lastInput: Buffer | undefined;
}

/**
 * Reads, validates and encodes rows, and stages them chunk by chunk under a job id that is not
 * committed yet. Staged chunks are kept alive while the upload is still arriving (renewed every
 * third of STAGING_TTL_SECONDS), so a slow client loses nothing. On a refusal (a bad row, too many
 * rows, none) it throws a problem; what it staged is then the caller's to remove.
 */
export class RowStager {
  constructor(
    private readonly store: JobStore,
    private readonly config: Pick<Config, 'CHUNK_SIZE' | 'MAX_ROWS_PER_JOB' | 'STAGING_TTL_SECONDS'>,
    private readonly logger: Logger,
    /** Asked before every chunk is written: a long upload stops as soon as Redis has no room left for new jobs. */
    private readonly admission?: JobAdmission,
  ) {}

  /** Stages `source` for job `id`; `staged()` always tells how many chunks were written so far (for cleanup). */
  async stage(id: string, model: ModelVersion, source: RowsToStage, staged: { chunks: number }): Promise<StagedUpload> {
    const chunkSize = model.manifest.chunkSize ?? this.config.CHUNK_SIZE;
    const encoder = new ChunkEncoder(model.manifest, chunkSize, 'columns' in source ? (source.passthrough ?? []) : []);
    const inFlight = new Set<Promise<unknown>>();
    const write = async (): Promise<void> => {
      const refusal = this.admission?.refusal();
      if (refusal) throw refusal;
      const done = this.store.staging.stage(id, staged.chunks++, encoder.finish(), this.config.STAGING_TTL_SECONDS);
      inFlight.add(done);
      void done.finally(() => inFlight.delete(done)).catch(() => undefined);
      if (inFlight.size >= STAGING_WINDOW) await Promise.race(inFlight);
    };
    const keepAlive = this.keepAlive(id, () => staged.chunks);
    try {
      const rows =
        'columns' in source ? await this.addColumns(model, source, encoder, write) : await this.addRows(model, source, encoder, write);
      if (rows === 0)
        throw new ProblemError('OB_ERR_INVALID_REQUEST', 'the batch holds no rows', {
          errors: [{ field: 'inputs', message: 'must not be empty' }],
        });
      const lastInput = encoder.rows > 0 ? encoder.finish() : undefined;
      await Promise.all(inFlight);
      return { rows, chunks: staged.chunks + (lastInput ? 1 : 0), chunkSize, lastInput };
    } catch (error) {
      await Promise.allSettled(inFlight);
      throw error;
    } finally {
      keepAlive.stop();
    }
  }

  /** Validates and encodes row objects; answers how many there were. */
  private async addRows(
    model: ModelVersion,
    source: RowObjectsToStage,
    encoder: ChunkEncoder,
    write: () => Promise<void>,
  ): Promise<number> {
    const { validator } = model;
    const errors: FieldError[] = [];
    const maxErrors = source.rowLocation === 'row' ? MAX_REPORTED_ROW_ERRORS : 1;
    const locate = (index: number): FieldError =>
      source.rowLocation === 'row' ? { row: index, message: '' } : { line: source.rowLocation(), message: '' };
    let index = 0;
    for await (const row of source.rows) {
      if (index >= this.config.MAX_ROWS_PER_JOB)
        throw new ProblemError('OB_ERR_TOO_MANY_ROWS', `a job may hold at most ${this.config.MAX_ROWS_PER_JOB} rows`);
      const problem = validator.check(row) ?? (errors.length === 0 ? encoder.add(row) : null);
      if (problem) {
        errors.push({ ...locate(index), ...problem });
        if (errors.length >= maxErrors) break; // streamed: answer now, while the client is still sending
      } else if (errors.length === 0 && encoder.full) {
        await write();
      }
      index++;
    }
    if (errors.length > 0) throw invalidRows(errors);
    return index;
  }

  /**
   * Validates column batches a column at a time and copies them into chunks, cutting a batch
   * where a chunk fills. The first bad value ends the upload, named by column and row.
   */
  private async addColumns(
    model: ModelVersion,
    source: ColumnsToStage,
    encoder: ChunkEncoder,
    write: () => Promise<void>,
  ): Promise<number> {
    let index = 0;
    for await (const batch of source.columns) {
      if (index + batch.rows > this.config.MAX_ROWS_PER_JOB)
        throw new ProblemError('OB_ERR_TOO_MANY_ROWS', `a job may hold at most ${this.config.MAX_ROWS_PER_JOB} rows`);
      const problem = model.columnValidator.check(batch);
      if (problem) throw invalidRows([{ ...problem, row: index + problem.row }]);
      for (let offset = 0; offset < batch.rows;) {
        const count = Math.min(batch.rows - offset, encoder.room);
        encoder.addColumns(batch, offset, count);
        offset += count;
        if (encoder.full) await write();
      }
      index += batch.rows;
    }
    return index;
  }

  private keepAlive(id: string, staged: () => number): { stop: () => void } {
    const ttl = this.config.STAGING_TTL_SECONDS;
    const timer = setInterval(
      () => {
        this.store.staging
          .keepAlive(id, staged(), ttl)
          .catch((error: unknown) => this.logger.warn('could not renew staged inputs', { jobId: id, error: String(error) }));
      },
      (ttl * 1000) / 3,
    );
    timer.unref();
    return { stop: () => clearInterval(timer) };
  }
}

function invalidRows(errors: FieldError[]): ProblemError {
  const first = errors[0] as FieldError;
  const where = first.row !== undefined ? `row ${first.row}` : `line ${first.line ?? '?'}`;
  const field = first.field ? `: field '${first.field}'` : ':';
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : '';
  return new ProblemError('OB_ERR_INVALID_ROWS', `${where}${field} ${first.message}${more}; nothing was queued`, { errors });
}
