import { createHash } from 'node:crypto';
import { lstat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { isFinished, ProblemError } from '@onnx-batch/contracts';
import {
  arrowColumnBatches,
  parquetColumnBatches,
  removeLeftovers,
  writeAtomically,
  finishedOrGone,
  csvRows,
  fileMatcher,
  ModelNotFoundError,
  ndjsonRows,
  VersionNotFoundError,
  type Config,
  type JobEvents,
  type JobRecord,
  type JobStore,
  type JobSubmitter,
  type Logger,
  type ModelRepository,
  type ModelRouter,
  type ModelSelection,
  type OutputFormat,
  type RowSource,
  type RunFile,
  type RunSummary,
  type ScheduleDefinition,
  type ScheduleRoot,
  type ScheduleStore,
} from '@onnx-batch/shared';
import { writeResultsFile } from './result-file';
import { TickInterrupted } from './tick-interrupted';

/** Priority of the jobs of scheduled runs: bulk work, behind interactive requests (default 100). */
export const SCHEDULE_JOB_PRIORITY = 500;
/** How long one wait for a job lasts before the job is read again (the wait itself has no bound). */
const WAIT_SLICE_MS = 30_000;

export interface ScheduleRunnerDeps {
  config: Pick<Config, 'MAX_ROW_BYTES' | 'PARQUET_MAX_ROW_GROUP_BYTES'>;
  schedules: ScheduleStore;
  jobs: JobStore;
  submitter: JobSubmitter;
  events: JobEvents;
  repository: ModelRepository;
  /** Picks each file's version: a pinned one, or the model's rollout at the time of the tick. */
  router: ModelRouter;
  root: ScheduleRoot;
  logger: Logger;
}

/** A tick as part of file names: `20261125T093002Z` (milliseconds only when not zero). */
export function tickStamp(tick: number): string {
  return new Date(tick)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.000Z$/, 'Z');
}

export function runIdOf(schedule: string, tick: number): string {
  return `${schedule}.${tickStamp(tick)}`;
}

/** The results file of an input file at a tick: `<name without extension>.<tick>.results.<format>`. */
function resultsName(file: string, tick: number, format: OutputFormat): string {
  return `${path.basename(file, path.extname(file))}.${tickStamp(tick)}.results.${format}`;
}

type Reader = 'csv' | 'ndjson' | 'arrow' | 'parquet';

/** How a file's rows are read, by its extension: Arrow as an IPC stream, Parquet by its footer, in place. */
const READERS: Record<string, Reader> = {
  '.csv': 'csv',
  '.ndjson': 'ndjson',
  '.jsonl': 'ndjson',
  '.arrow': 'arrow',
  '.arrows': 'arrow',
  '.parquet': 'parquet',
};

/**
 * Runs one tick of a schedule. Every input file becomes a job of the schedule's tenant through
 * the JobSubmitter (as an upload would), the run waits for it, then writes its results and, last,
 * the run summary. Idempotent per tick: the run id and file names derive from the tick, a
 * finished run (its summary exists) is not run again, each file's job is submitted under an
 * idempotency key of tick and file (a retry finds the job it made before), and a results file
 * already written is kept.
 *
 * When `stop` aborts (the scheduler is shutting down) the run ends at the next safe point with
 * TickInterrupted: a file being read and staged is dropped (nothing of it was committed), the wait
 * for a job ends (the job runs on in the workers), a results or summary file being written is
 * finished first. The run stays `running` in the history until the tick is resumed.
 */
export class ScheduleRunner {
  constructor(private readonly deps: ScheduleRunnerDeps) {}

  async run(tenant: string, name: string, tick: number, stop: AbortSignal = new AbortController().signal): Promise<RunSummary | null> {
    const { schedules, root, logger } = this.deps;
    if (stop.aborted) throw new TickInterrupted();
    const definition = await schedules.get(tenant, name);
    if (!definition) {
      logger.info('schedule tick skipped: the schedule was deleted', { tenant, schedule: name, tick: new Date(tick).toISOString() });
      return null;
    }
    const runId = runIdOf(name, tick);
    const run: RunSummary = {
      schedule: name,
      runId,
      tick: new Date(tick).toISOString(),
      startedAt: new Date().toISOString(),
      finishedAt: null,
      status: 'running',
      summary: null,
      files: [],
    };
    let inputDir: string;
    let outputDir: string;
    try {
      inputDir = await root.directory(definition.input.dir, 'input.dir');
      outputDir = await root.directory(definition.output.dir, 'output.dir');
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      // The directories moved (or now lead outside SCHEDULES_ROOT) since the schedule was written.
      return this.finish(definition, { ...run, status: 'failed', finishedAt: new Date().toISOString(), error: error.message });
    }
    const summaryName = `${runId}.summary.json`;
    const summaryFile = path.join(outputDir, summaryName);
    if (await exists(summaryFile)) {
      // This tick ran to the end before (the process died after writing it): keep what it wrote.
      const handle = await root.openInput(outputDir, summaryName);
      const done = {
        ...(JSON.parse(await handle.readFile('utf8').finally(() => handle.close())) as RunSummary),
        summary: path.join(definition.output.dir, summaryName),
      };
      await schedules.recordRun(tenant, name, done);
      logger.info('schedule tick had already run; its files are kept', { tenant, schedule: name, runId });
      return done;
    }
    await schedules.recordRun(tenant, name, run);
    logger.info('schedule run started', { tenant, schedule: name, runId });
    try {
      return await this.runFiles(definition, run, inputDir, outputDir, tick, stop);
    } catch (error) {
      if (error instanceof TickInterrupted) throw error;
      // Shown in the history until a retry of the tick overwrites it.
      const failed: RunSummary = { ...run, status: 'failed', finishedAt: new Date().toISOString(), error: (error as Error).message };
      await schedules.recordRun(tenant, name, failed).catch(() => undefined);
      throw error;
    }
  }

  private async runFiles(
    definition: ScheduleDefinition,
    run: RunSummary,
    inputDir: string,
    outputDir: string,
    tick: number,
    stop: AbortSignal,
  ): Promise<RunSummary> {
    const summaryName = `${run.runId}.summary.json`;
    let model: ModelSelection | null = null;
    try {
      model = await this.deps.router.select(definition.model, definition.version ?? undefined);
    } catch (error) {
      if (!(error instanceof ModelNotFoundError || error instanceof VersionNotFoundError)) throw error;
      run.error = error.message;
    }
    const matcher = fileMatcher(definition.input.pattern);
    const entries = await readdir(inputDir, { withFileTypes: true });
    const names = entries
      .filter((e) => (e.isFile() || e.isSymbolicLink()) && matcher.match(e.name))
      .map((e) => e.name)
      .sort();
    // Only one process runs a tick at a time (BullMQ's lock): a temporary file of a file this run
    // writes was left by a scheduler that died writing it (SIGKILL, or its grace ran out).
    const targets = new Set([summaryName, ...names.map((file) => resultsName(file, tick, definition.output.format))]);
    const leftovers = await removeLeftovers(outputDir, (target) => targets.has(target));
    if (leftovers.length > 0)
      this.deps.logger.warn('removed temporary files an interrupted run of this tick left', {
        tenant: definition.tenant,
        schedule: definition.name,
        runId: run.runId,
        files: leftovers,
      });
    for (const file of names) {
      if (stop.aborted) throw new TickInterrupted();
      run.files.push(await this.runFile(definition, model, run.error, inputDir, outputDir, file, tick, stop));
    }

    const finished: RunSummary = {
      ...run,
      finishedAt: new Date().toISOString(),
      status: run.error === undefined && run.files.every((f) => f.status === 'completed') ? 'completed' : 'failed',
      summary: path.join(definition.output.dir, summaryName),
    };
    const { summary: _summary, ...onDisk } = finished;
    await writeAtomically(path.join(outputDir, summaryName), async (handle) => {
      await handle.write(`${JSON.stringify(onDisk, null, 2)}\n`);
    });
    return this.finish(definition, finished);
  }

  private async finish(definition: ScheduleDefinition, run: RunSummary): Promise<RunSummary> {
    await this.deps.schedules.recordRun(definition.tenant, definition.name, run);
    this.deps.logger.info('schedule run finished', {
      tenant: definition.tenant,
      schedule: definition.name,
      runId: run.runId,
      status: run.status,
      files: run.files.length,
      ...(run.error ? { error: run.error } : {}),
    });
    return run;
  }

  /** One input file: submit it as a job (once per tick), wait for it, write its results (once). */
  private async runFile(
    definition: ScheduleDefinition,
    model: ModelSelection | null,
    modelError: string | undefined,
    inputDir: string,
    outputDir: string,
    file: string,
    tick: number,
    stop: AbortSignal,
  ): Promise<RunFile> {
    const extension = path.extname(file).toLowerCase();
    const outputName = resultsName(file, tick, definition.output.format);
    const rejected = (error: string): RunFile => ({
      input: path.join(definition.input.dir, file),
      output: null,
      jobId: null,
      rows: 0,
      failedRows: 0,
      status: 'rejected',
      error,
    });
    if (!model) return rejected(modelError ?? 'the model cannot be resolved');
    const reader = READERS[extension];
    if (!reader) return rejected(`files ending in '${extension}' cannot be read; use .csv, .ndjson, .jsonl, .arrow, .arrows or .parquet`);

    let record: JobRecord;
    try {
      record = await this.submit(definition, model, inputDir, file, reader, tick, stop);
    } catch (error) {
      // A tenant at its job limit is told to come back later: the tick is retried.
      if (!(error instanceof ProblemError) || error.code === 'OB_ERR_TOO_MANY_ACTIVE_JOBS') throw error;
      return rejected(error.message);
    }
    this.deps.logger.info('schedule file submitted', {
      tenant: definition.tenant,
      schedule: definition.name,
      runId: runIdOf(definition.name, tick),
      file,
      jobId: record.id,
    });
    record = await this.waitForJob(record, stop);

    let output: string | null = null;
    if (record.status === 'completed' || record.status === 'failed') {
      const target = path.join(outputDir, outputName);
      if (!(await exists(target))) {
        const manifest = this.deps.repository.resolve(record.model, record.version).manifest;
        await writeResultsFile(target, record, this.deps.jobs, manifest, definition.output.format);
      }
      output = path.join(definition.output.dir, outputName);
    }
    return {
      input: path.join(definition.input.dir, file),
      output,
      jobId: record.id,
      rows: record.total,
      failedRows: record.failed,
      status: record.status,
      ...(record.error ? { error: record.error.detail } : {}),
    };
  }

  private async submit(
    definition: ScheduleDefinition,
    model: ModelSelection,
    inputDir: string,
    file: string,
    reader: Reader,
    tick: number,
    stop: AbortSignal,
  ): Promise<JobRecord> {
    const { config, root, submitter } = this.deps;
    const { manifest } = model.parsing;
    // Opened without following a symlink (ScheduleRoot.openInput); every reader reads this handle.
    const handle = await root.openInput(inputDir, file);
    // A client's Idempotency-Key is printable ASCII without spaces, so this one cannot collide with any.
    const key = `schedule ${definition.tenant} ${definition.name} ${tickStamp(tick)} ${file}`;
    const common = {
      model,
      tenant: definition.tenant,
      priority: SCHEDULE_JOB_PRIORITY,
      callbackUrl: null,
      idempotency: { keyHash: createHash('sha256').update(key).digest('hex'), bodyHash: () => 'schedule-tick' },
    };
    if (reader === 'parquet') {
      // The footer first, then a row group at a time, read at their offsets in the file: nothing is spooled.
      try {
        const columns = parquetColumnBatches(handle, manifest, { maxRowGroupBytes: config.PARQUET_MAX_ROW_GROUP_BYTES });
        return (await submitter.submit({ ...common, columns: untilStopped(columns, stop) })).record;
      } finally {
        await handle.close();
      }
    }
    // A byte stream (never object mode), which closes the handle when destroyed.
    const stream = handle.createReadStream();
    try {
      if (reader === 'arrow') {
        return (await submitter.submit({ ...common, columns: untilStopped(arrowColumnBatches(stream, manifest), stop) })).record;
      }
      const source: RowSource =
        reader === 'csv' ? csvRows(stream, manifest, config.MAX_ROW_BYTES) : ndjsonRows(stream, config.MAX_ROW_BYTES);
      return (await submitter.submit({ ...common, rows: untilStopped(source.rows, stop), rowLocation: source.currentLine })).record;
    } finally {
      stream.destroy();
    }
  }

  private async waitForJob(submitted: JobRecord, stop: AbortSignal): Promise<JobRecord> {
    const { jobs, events } = this.deps;
    let record: JobRecord | null = submitted;
    while (!isFinished(record.status)) {
      await events.waitFor(submitted.id, WAIT_SLICE_MS, finishedOrGone(jobs, submitted.id), stop);
      // The job runs on in the workers; the resumed tick finds it by its idempotency key.
      if (stop.aborted) throw new TickInterrupted();
      record = await jobs.get(submitted.id);
      if (!record) throw new Error(`job ${submitted.id} disappeared before it finished`);
    }
    return record;
  }
}

/**
 * The rows (or column batches) of a file until `stop` aborts; then TickInterrupted, which makes
 * the submitter delete what it staged (nothing was committed, so the resumed tick reads the file again).
 */
async function* untilStopped<T>(items: AsyncIterable<T>, stop: AbortSignal): AsyncGenerator<T> {
  for await (const item of items) {
    if (stop.aborted) throw new TickInterrupted();
    yield item;
  }
}

/** Whether a name exists in a directory (a symlink counts; it is never followed). */
async function exists(file: string): Promise<boolean> {
  try {
    await lstat(file);
    return true;
  } catch {
    return false;
  }
}
