import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import type { QualityMetrics } from '@onnx-batch/contracts';
import { UsageError } from '../errors';
import { ExitCode } from '../exit-codes';
import type { ModelQualityQuery } from '../types';
import { printJson, table, type CommandContext, type ConnectionOptions } from './command-kit';

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LABEL_FORMATS = ['csv', 'ndjson', 'json'] as const;
type LabelFormat = (typeof LABEL_FORMATS)[number];

interface LabelsFlags extends ConnectionOptions {
  format?: LabelFormat;
}

interface QualityFlags extends ConnectionOptions {
  window: number;
  version?: string;
  arm?: ModelQualityQuery['arm'];
  json?: boolean;
}

/** `onnx-batch labels [jobId] <file>` and `onnx-batch quality <model | jobId>`. */
export function addQualityCommands(ctx: CommandContext): void {
  ctx
    .command('labels')
    .description("Send ground-truth labels for predicted rows: a job's rows (by index or id), or, without a job id, rows found by id.")
    .argument('<job-or-file>', 'the job id, or the labels file when labels name rows by id across your jobs')
    .argument('[file]', "the labels file ('-' = stdin): .csv, .ndjson/.jsonl or .json")
    .addOption(new Option('-f, --format <format>', 'labels format (default: from the file extension)').choices(LABEL_FORMATS))
    .addHelpText(
      'after',
      `
A label names its row by 'index' (its position in the job, from 0) or by the 'id' it was submitted
with, and gives 'label' (a classifier's class) or 'value' (a regression model's true number):
  index,label            id,value
  0,setosa               house-17,231000
Labels are idempotent: the same file sent twice counts once; a changed label replaces the old one.

Examples:
  onnx-batch labels 3f2a…-…  yesterday-labels.csv
  onnx-batch labels labels-by-id.ndjson`,
    )
    .action((first: string, second: string | undefined, _opts: unknown, command: Command) =>
      ctx.run<LabelsFlags>(async (_arg, opts) => {
        const [jobId, file] = second === undefined ? [null, first] : [first, second];
        if (jobId !== null && !JOB_ID.test(jobId)) throw new UsageError(`'${jobId}' is not a job id`);
        const format = opts.format ?? labelFormatOf(file);
        const body = await openLabels(file, ctx);
        const answer = await ctx.clientOf(opts).postLabels(jobId, format, body, { signal: ctx.signal });
        if (!opts.quiet) {
          const where = answer.jobId ? `job ${answer.jobId}` : `${answer.jobs?.length ?? 0} job(s)`;
          ctx.io.stderr.write(
            `${answer.labels} label(s) for ${where}: ${answer.added} added, ${answer.replaced} replaced, ${answer.unchanged} ` +
              `unchanged, ${answer.notPredicted} on rows that failed\n`,
          );
        }
        printJson(ctx.io, answer);
        return ExitCode.Ok;
      })(command),
    );

  ctx
    .command('quality')
    .description("Quality of a model's versions over a window (or of one job): realised from labels, estimated from confidences.")
    .argument('<model-or-job>', 'a model name, or a job id')
    .option('--window <duration>', 'how far back: 24h, 7d, 30d… (hour buckets up to 48 h, else day buckets)', parseWindow, 24 * 3_600_000)
    .option('--version <version>', 'only this version')
    .addOption(new Option('--arm <arm>', 'only this arm').choices(['default', 'canary', 'pinned', 'shadow']))
    .option('--json', 'print the server answer as JSON')
    .action(
      ctx.run<QualityFlags>(async (target, opts) => {
        const client = ctx.clientOf(opts);
        const name = target ?? '';
        if (JOB_ID.test(name)) {
          const job = await client.jobQuality(name, { signal: ctx.signal });
          if (opts.json) printJson(ctx.io, job);
          else ctx.io.stdout.write(qualityTable([{ version: job.version, arm: job.arm, reference: job.reference, metrics: job }]));
          return ExitCode.Ok;
        }
        const to = Date.now();
        const answer = await client.modelQuality(
          name,
          {
            version: opts.version,
            arm: opts.arm,
            from: new Date(to - opts.window).toISOString(),
            to: new Date(to).toISOString(),
            bucket: opts.window <= 48 * 3_600_000 ? 'hour' : 'day',
          },
          { signal: ctx.signal },
        );
        if (opts.json) printJson(ctx.io, answer);
        else
          ctx.io.stdout.write(
            qualityTable(answer.series.map((s) => ({ version: s.version, arm: s.arm, reference: s.reference, metrics: s }))),
          );
        return ExitCode.Ok;
      }),
    );
}

/** A table of quality: one line per version and arm. */
export function qualityTable(
  rows: readonly { version: string; arm: string; reference: Record<string, unknown> | null; metrics: QualityMetrics }[],
): string {
  const figure = (n: number | null | undefined, digits = 4): string => (n === null || n === undefined ? '-' : n.toFixed(digits));
  const classifier = rows.some((r) => r.metrics.kind === 'classification');
  const header = classifier
    ? ['VERSION', 'ARM', 'PREDICTED', 'LABELLED', 'ACCURACY', 'ESTIMATED', 'MACRO-F1', 'LOG-LOSS', 'REFERENCE']
    : ['VERSION', 'ARM', 'PREDICTED', 'LABELLED', 'MAE', 'RMSE', 'R2', 'BIAS', 'REFERENCE RMSE'];
  const lines: string[][] = [header];
  for (const { version, arm, reference, metrics: m } of rows) {
    const counts = [version, arm, String(m.predictedRows), String(m.labelledRows)];
    if (m.kind === 'classification')
      lines.push([
        ...counts,
        figure(m.accuracy),
        figure(m.estimated?.accuracy),
        figure(m.macroF1),
        figure(m.logLoss),
        figure(reference?.accuracy as number | undefined),
      ]);
    else
      lines.push([...counts, figure(m.mae), figure(m.rmse), figure(m.r2), figure(m.bias), figure(reference?.rmse as number | undefined)]);
  }
  return rows.length === 0 ? 'no predictions in this window\n' : table(lines);
}

function labelFormatOf(file: string): LabelFormat {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.csv') return 'csv';
  if (ext === '.ndjson' || ext === '.jsonl') return 'ndjson';
  if (ext === '.json') return 'json';
  throw new UsageError(`cannot tell the format of '${file}' from its extension (.csv, .ndjson, .jsonl or .json); add --format`);
}

async function openLabels(file: string, ctx: CommandContext): Promise<AsyncIterable<Uint8Array>> {
  if (file === '-') return ctx.io.stdin as AsyncIterable<Uint8Array>;
  const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read '${file}': ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  if (!info.isFile()) throw new UsageError(`'${file}' is not a file`);
  return createReadStream(file, { highWaterMark: 1024 * 1024 });
}

/** `24h`, `7d`, `90m` as milliseconds. */
function parseWindow(value: string): number {
  const match = /^(\d+)\s*([mhd])$/.exec(value.trim());
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
  const ms = match ? Number(match[1]) * unit[match[2] as keyof typeof unit] : NaN;
  if (!Number.isFinite(ms) || ms <= 0) throw new InvalidArgumentError('must be a duration like 90m, 24h or 7d.');
  return ms;
}
