import { InvalidArgumentError } from 'commander';
import { JOB_STATUSES, type JobStatus, type JobStatusDocument } from '@onnx-batch/contracts';
import { ExitCode } from '../exit-codes';
import type { JobListQuery } from '../types';
import { table, type CommandContext, type ConnectionOptions } from './command-kit';

interface JobsOptions extends ConnectionOptions {
  status?: JobStatus[];
  model?: string;
  limit?: number;
  all?: boolean;
  json?: boolean;
}

/** `onnx-batch jobs`: the caller's jobs, newest first, as a table (or one JSON document a line). */
export function addJobsCommand(ctx: CommandContext): void {
  ctx
    .command('jobs')
    .description("List your tenant's jobs, newest first: one page, or every page with --all.")
    .option('--status <status>', `only jobs in this state (${JOB_STATUSES.join(', ')}; repeat or comma-separate)`, statusList)
    .option('--model <name>', 'only jobs of this model')
    .option('--limit <n>', 'jobs per page, 1–1000 (server default 100)', pageSize)
    .option('--all', 'follow every page, not just the first')
    .option('--json', 'print each job status document as one JSON line')
    .action(
      ctx.run<JobsOptions>(async (_arg, opts) => {
        const client = ctx.clientOf(opts);
        const query: JobListQuery = { status: opts.status, model: opts.model, limit: opts.limit };
        const jobs: JobStatusDocument[] = [];
        if (opts.all) {
          for await (const job of client.allJobs(query, { signal: ctx.signal })) {
            if (opts.json) ctx.io.stdout.write(`${JSON.stringify(job)}\n`);
            else jobs.push(job);
          }
        } else {
          const page = await client.jobs(query, { signal: ctx.signal });
          if (opts.json) for (const job of page.data) ctx.io.stdout.write(`${JSON.stringify(job)}\n`);
          else jobs.push(...page.data);
          if (page.has_more && !opts.quiet) ctx.io.stderr.write('more jobs follow: add --all to list every page\n');
        }
        if (!opts.json) ctx.io.stdout.write(jobTable(jobs));
        return ExitCode.Ok;
      }),
    );
}

/** The table of jobs: id, model@version, status, done/total/failed, created. */
export function jobTable(jobs: readonly JobStatusDocument[]): string {
  const rows: string[][] = [['ID', 'MODEL', 'STATUS', 'DONE/TOTAL/FAILED', 'CREATED']];
  for (const job of jobs) {
    const { done, total, failed } = job.progress;
    rows.push([job.jobId, `${job.model.name}@${job.model.version}`, job.status, `${done}/${total}/${failed}`, job.createdAt]);
  }
  return table(rows);
}

function statusList(value: string, previous: JobStatus[] | undefined): JobStatus[] {
  const statuses = value.split(',').map((s) => s.trim());
  for (const status of statuses) {
    if (!(JOB_STATUSES as readonly string[]).includes(status)) throw new InvalidArgumentError(`must be one of ${JOB_STATUSES.join(', ')}.`);
  }
  return [...(previous ?? []), ...(statuses as JobStatus[])];
}

function pageSize(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('must be an integer from 1 to 1000.');
  return n;
}
