import { createReadStream } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { Option } from 'commander';
import type { StartEvaluationOptions } from '../client';
import { UsageError } from '../errors';
import { ExitCode } from '../exit-codes';
import { formatFromExtension } from '../formats';
import type { Evaluation } from '../types';
import { parseSeconds, printJson, table, type CommandContext, type ConnectionOptions } from './command-kit';

interface EvaluateFlags extends ConnectionOptions {
  file?: string;
  format?: 'ndjson' | 'csv' | 'json';
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}

const HELP = `
Without --file the version's own evaluation set (the file its manifest names) is used; with it,
labelled rows: the features as you submit them (and an optional 'id') plus 'label' (a classifier)
or 'value' (regression); .ndjson/.jsonl and .csv are streamed, .json is one array.

The rows run as two ordinary jobs, on the version and on the default serving now; the report
compares accuracy, macro F1 and log loss (or RMSE and MAE), each difference with a paired
bootstrap confidence interval, and gives the verdict the quality gate of 'rollout set --canary'
checks (docs/models-in-production.md#quality-gate).

Exit codes with --wait: 0 the verdict is pass, 8 fail or insufficient-data, 4 the evaluation could
not be made (a job failed), 6 --timeout passed. Without --wait: 0 once started.

Examples:
  onnx-batch evaluate iris 3 --wait
  onnx-batch evaluate iris 3 --file labelled.csv --wait --json`;

/** `onnx-batch evaluate MODEL VERSION`: evaluates a version against the serving default; with --wait, prints the report. */
export function addEvaluateCommand(ctx: CommandContext): void {
  const { io, signal } = ctx;
  const command = ctx
    .command('evaluate')
    .description('Evaluate a model version against the default serving now, over a labelled set (admin). Prints the evaluation id.')
    .argument('<model>', 'model name')
    .argument('<version>', 'the candidate version')
    .option('--file <file>', "labelled rows to evaluate on (default: the version's own evaluation set)")
    .addOption(new Option('-f, --format <format>', 'format of --file (default: from its extension)').choices(['ndjson', 'csv', 'json']))
    .option('-w, --wait', 'wait for the report and print it; exit code by the verdict')
    .option('-t, --timeout <seconds>', 'stop waiting after this long (exit 6; the evaluation goes on)', parseSeconds)
    .option('--json', 'print the evaluation as JSON')
    .addHelpText('after', HELP);
  command.action(
    ctx.run<EvaluateFlags>(async (model, opts) => {
      const name = String(model);
      const version = String(command.processedArgs[1] ?? '');
      if (!/^[0-9]{1,9}$/.test(version)) throw new UsageError(`version must be digits (got '${version}')`);
      const client = ctx.clientOf(opts);
      const started = await client.startEvaluation(name, version, { upload: await uploadOf(opts), signal });
      if (!opts.quiet)
        io.stderr.write(
          `evaluation ${started.id} of ${name} ${version} against the default ${started.baseline} started ` +
            `(${started.rows} rows; jobs ${started.jobs.candidate}, ${started.jobs.baseline})\n`,
        );
      if (!opts.wait) {
        if (opts.json) printJson(io, started);
        else io.stdout.write(`${started.id}\n`);
        return ExitCode.Ok;
      }
      const done = await client.waitEvaluation(name, version, started.id, {
        signal,
        ...(opts.timeout === undefined ? {} : { timeoutMs: opts.timeout * 1000 }),
      });
      if (opts.json) printJson(io, done);
      else io.stdout.write(evaluationText(done));
      if (done.status === 'failed') return ExitCode.JobFailed;
      return done.report?.verdict === 'pass' ? ExitCode.Ok : ExitCode.NotPassed;
    }),
  );
}

async function uploadOf(opts: EvaluateFlags): Promise<StartEvaluationOptions['upload']> {
  if (opts.file === undefined) return undefined;
  const format = opts.format ?? formatFromExtension(opts.file);
  if (format !== 'ndjson' && format !== 'csv' && format !== 'json')
    throw new UsageError(`--file ${opts.file}: give a .ndjson, .jsonl, .csv or .json file, or --format`);
  if (format === 'json') {
    let rows: unknown;
    try {
      rows = JSON.parse(await readFile(opts.file, 'utf8')) as unknown;
    } catch (error) {
      throw new UsageError(`--file ${opts.file}: ${(error as Error).message}`);
    }
    if (!Array.isArray(rows)) throw new UsageError(`--file ${opts.file}: a .json file is one array of labelled rows`);
    return { rows: rows as object[] };
  }
  try {
    await access(opts.file);
  } catch (error) {
    throw new UsageError(`--file ${opts.file}: ${(error as Error).message}`);
  }
  return { format, body: createReadStream(opts.file) };
}

/** An evaluation for a person: the versions, the verdict and why, and each metric with its difference and interval. */
export function evaluationText(evaluation: Evaluation): string {
  const head = `${evaluation.model} ${evaluation.version} against the default ${evaluation.baseline}`;
  if (evaluation.status === 'running') return `${head}: running (evaluation ${evaluation.id})\n`;
  if (evaluation.status === 'failed' || !evaluation.report)
    return `${head}: could not be made: ${evaluation.error ?? 'no report'} (evaluation ${evaluation.id})\n`;
  const r = evaluation.report;
  const percent = `${Number((r.bootstrap.confidence * 100).toPrecision(4))} % CI`;
  const rows = [['  metric', 'candidate', 'default', 'difference', percent]];
  for (const m of r.metrics)
    rows.push([
      `  ${m.metric}${m.metric === r.primary ? ' *' : ''}`,
      num(m.candidate),
      num(m.baseline),
      num(m.difference),
      m.ci ? `[${num(m.ci.low)}, ${num(m.ci.high)}]` : '-',
    ]);
  return (
    `${head}: ${r.verdict} (evaluation ${evaluation.id})\n` +
    `  over ${r.comparedRows} of ${r.rows} rows (failed: candidate ${r.failedRows.candidate}, default ${r.failedRows.baseline}); ` +
    `${r.bootstrap.resamples} paired bootstrap resamples\n` +
    table(rows) +
    `  ${r.reason}\n`
  );
}

function num(x: number | null): string {
  return x === null ? '-' : String(Number(x.toPrecision(4)));
}
