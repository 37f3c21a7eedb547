import { ApiError, download, getJson, ndjsonLines, parameterValues, sendJson } from './api.js';
import { confirmAction } from './dialog.js';
import { badge, count, duration, facts, field, h, notice, show, table, time, type Child } from './dom.js';
import { can, type Screen } from './screen.js';
import { JOB_STATES, type FailedRow, type JobListAnswer, type JobStatusDocument, type ModelDoc } from './types.js';

const PAGE = 50;
/** Failed rows read to group their reasons; a job with more says the groups count only these. */
const MAX_FAILED_READ = 10_000;

const finished = (job: JobStatusDocument): boolean => job.status === 'completed' || job.status === 'failed' || job.status === 'cancelled';
const succeeded = (job: JobStatusDocument): number => job.progress.done - job.progress.failed;

/** A job's phase in words: a running job whose rows are all done is still finishing (results being committed). */
export function phase(job: JobStatusDocument): string {
  if (job.status === 'running' && job.progress.total > 0 && job.progress.done >= job.progress.total) return 'finishing';
  return job.status;
}

export function modelCell(job: JobStatusDocument): Node {
  const arm = job.model.route === 'default' ? null : badge(job.model.route, 'arm');
  return h('span', {}, `${job.model.name}@${job.model.version}`, arm ? ' ' : null, arm);
}

/** done/total as a <progress> with a name, and the counts in words beside it. */
export function jobProgress(job: JobStatusDocument): Node {
  const { done, total, failed } = job.progress;
  const words = `${count(succeeded(job))} done, ${count(failed)} failed, of ${count(total)}`;
  return h(
    'span',
    { class: 'progress' },
    h('progress', { max: Math.max(1, total), value: done, 'aria-label': `Job ${job.jobId.slice(0, 8)}: ${words}` }),
    ' ',
    h('span', { class: failed > 0 ? 'has-failures' : '' }, words),
  );
}

function jobDuration(job: JobStatusDocument): string {
  if (!job.startedAt) return '—';
  const end = job.finishedAt ? Date.parse(job.finishedAt) : Date.now();
  return duration(end - Date.parse(job.startedAt));
}

/** The job list: filters and paging are the server's (GET /v1/jobs), never a page filtered here. */
export async function jobsScreen(screen: Screen): Promise<void> {
  const { query } = screen;
  const status = query.get('status') ?? '';
  const model = query.get('model') ?? '';
  const after = query.get('after') ?? '';
  const { models } = await getJson<{ models: ModelDoc[] }>('/v1/models');
  const select = (name: string, label: string, values: string[], current: string): Child[] => [
    h('label', { for: `filter-${name}` }, label),
    ' ',
    h(
      'select',
      { id: `filter-${name}`, name },
      h('option', { value: '' }, 'any'),
      ...values.map((v) => h('option', { value: v, selected: v === current }, v)),
    ),
  ];
  const form = h(
    'form',
    { class: 'filters', 'aria-label': 'Filter jobs' },
    ...select('status', 'Status', [...JOB_STATES], status),
    ' ',
    ...select(
      'model',
      'Model',
      models.map((m) => m.name),
      model,
    ),
    ' ',
    h('button', { type: 'submit' }, 'Filter'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const next = new URLSearchParams();
    for (const name of ['status', 'model']) if (field(data, name)) next.set(name, field(data, name));
    location.hash = `#/jobs?${next.toString()}`;
  });
  const results = h('div', { id: 'job-list' });
  show(screen.main, h('h1', { tabindex: -1 }, 'Jobs'), form, results);

  const draw = async (): Promise<boolean> => {
    const params = new URLSearchParams({ limit: String(PAGE) });
    if (status) params.set('status', status);
    if (model) params.set('model', model);
    if (after) params.set('after', after);
    const page = await getJson<JobListAnswer>(`/v1/jobs?${params.toString()}`);
    if (!screen.live()) return false;
    const keep = new URLSearchParams({ ...(status ? { status } : {}), ...(model ? { model } : {}) });
    const nextCursor = page.next ? new URL(page.next, location.origin).searchParams.get('after') : null;
    show(
      results,
      page.data.length === 0
        ? notice('No job matches.')
        : table(
            after ? 'Jobs, a later page' : 'Jobs, newest first',
            ['Job', 'Model', 'Status', 'Progress', 'Created', 'Duration'],
            page.data.map((job) => [
              h('a', { href: `#/jobs/${job.jobId}` }, job.jobId.slice(0, 8)),
              modelCell(job),
              badge(phase(job), job.status),
              jobProgress(job),
              time(job.createdAt),
              jobDuration(job),
            ]),
            { class: 'jobs' },
          ),
      h(
        'nav',
        { class: 'pager', 'aria-label': 'Pages of jobs' },
        after ? h('a', { href: `#/jobs?${keep.toString()}` }, 'First page') : null,
        ' ',
        nextCursor
          ? h('a', { href: `#/jobs?${new URLSearchParams({ ...Object.fromEntries(keep), after: nextCursor }).toString()}` }, 'Next page')
          : null,
      ),
    );
    return true;
  };
  await draw();
  screen.repeat(5000, draw);
}

export interface Sample {
  /** performance.now() when the poll answered. */
  at: number;
  done: number;
}

/**
 * Rows per second over the polls kept (the oldest to the newest), and the time left at that pace;
 * null while it cannot be told (one poll, no progress yet) or the job has finished.
 */
export function pace(samples: readonly Sample[], job: JobStatusDocument): { rowsPerSecond: number | null; msLeft: number | null } {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (finished(job) || !first || !last || last.at <= first.at || last.done <= first.done) return { rowsPerSecond: null, msLeft: null };
  const rowsPerSecond = ((last.done - first.done) * 1000) / (last.at - first.at);
  return { rowsPerSecond, msLeft: ((job.progress.total - job.progress.done) / rowsPerSecond) * 1000 };
}

/** One job: phase and counts, speed from successive polls, timeline, grouped errors, downloads, cancel and delete. */
export async function jobScreen(screen: Screen): Promise<void> {
  const id = screen.params[0] ?? '';
  const path = `/v1/batch-result/${encodeURIComponent(id)}`;
  const samples: Sample[] = [];
  const body = h('div', { id: 'job-body' });
  const errorsPart = h('section', { 'aria-labelledby': 'errors-title' });
  const actions = h('p', { class: 'actions' });
  const message = h('div', { 'aria-live': 'polite' });
  show(screen.main, h('h1', { tabindex: -1 }, `Job ${id}`), message, body, actions, errorsPart);
  const formats = (await parameterValues('/v1/batch-result/{id}/results', 'format')).filter((f) => f !== 'json');
  let errorsShown = false;

  const draw = (job: JobStatusDocument): void => {
    samples.push({ at: performance.now(), done: job.progress.done });
    if (samples.length > 6) samples.shift();
    const { rowsPerSecond, msLeft } = pace(samples, job);
    const remaining = job.progress.total - job.progress.done;
    show(
      body,
      h(
        'p',
        { class: 'phase' },
        'Phase: ',
        badge(phase(job), job.status),
        phase(job) === 'finishing' ? ' — every row is done; results are being committed.' : null,
      ),
      h('p', { class: 'counts', 'data-figure': 'counts' }, jobProgress(job)),
      facts([
        ['Model', modelCell(job)],
        ['Rows', count(job.progress.total)],
        ['Succeeded', count(succeeded(job))],
        ['Failed', count(job.progress.failed)],
        ['Remaining', count(remaining)],
        ['Speed', rowsPerSecond === null ? '—' : `${count(Math.round(rowsPerSecond))} rows/s`],
        ['Time left', duration(msLeft)],
      ]),
      h('h2', {}, 'Timeline'),
      h(
        'ol',
        { class: 'timeline' },
        h('li', {}, 'Created ', time(job.createdAt)),
        h('li', {}, 'Started ', time(job.startedAt)),
        h('li', {}, `${job.finishedAt ? job.status[0]?.toUpperCase() + job.status.slice(1) : 'Finished'} `, time(job.finishedAt)),
      ),
      job.error ? notice(`The job failed: ${job.error.detail ?? job.error.title}`, 'error') : null,
    );
    drawActions(job);
    if (finished(job) && !errorsShown) {
      errorsShown = true;
      void drawErrors(job);
    }
  };

  const drawActions = (job: JobStatusDocument): void => {
    const done = job.status === 'completed' || job.status === 'failed';
    const downloads = done
      ? [
          ...formats.map((format) =>
            h(
              'button',
              { type: 'button', name: `download-${format}`, onclick: () => void fetchFile(`${path}/results?format=${format}`, format) },
              `Results (${format})`,
            ),
          ),
          h(
            'button',
            { type: 'button', name: 'download-failed', onclick: () => void fetchFile(`${path}/failed-rows`, 'failed') },
            'Failed rows only (NDJSON)',
          ),
        ]
      : [];
    const mayChange = can(screen.me, 'submit');
    show(
      actions,
      ...downloads.flatMap((b) => [b, ' ']),
      mayChange && !finished(job)
        ? h('button', { type: 'button', name: 'cancel', class: 'danger', onclick: () => void cancel() }, 'Cancel job')
        : null,
      ' ',
      mayChange ? h('button', { type: 'button', name: 'delete', class: 'danger', onclick: () => void remove() }, 'Delete job') : null,
    );
  };

  const fetchFile = async (url: string, what: string): Promise<void> => {
    try {
      await download(url, '*/*', `${id}.${what}`);
    } catch (error) {
      show(message, notice(`Download failed: ${(error as Error).message}`, 'error'));
    }
  };

  /** Asks first; then acts, and says why when the API refused. */
  const afterConfirming =
    (question: Parameters<typeof confirmAction>[0], refused: string, act: () => Promise<void>) => async (): Promise<void> => {
      if ((await confirmAction(question)) === null) return;
      try {
        await act();
      } catch (error) {
        show(message, notice(`${refused}: ${(error as Error).message}`, 'error'));
      }
    };

  const cancel = afterConfirming(
    {
      title: 'Cancel this job?',
      body: 'Chunks not yet run are dropped and the job ends as cancelled, without results. This cannot be undone.',
      action: 'Cancel job',
    },
    'Not cancelled',
    async () => {
      draw(await sendJson<JobStatusDocument>('POST', `${path}/cancel`));
      show(message, notice('The job was cancelled.'));
    },
  );

  const remove = afterConfirming(
    {
      title: 'Delete this job?',
      body: 'Its record, inputs and results are removed from Redis (a running job is cancelled first). This cannot be undone.',
      action: 'Delete job',
    },
    'Not deleted',
    async () => {
      await sendJson('DELETE', path);
      location.hash = '#/jobs';
    },
  );

  const drawErrors = async (job: JobStatusDocument): Promise<void> => {
    const title = h('h2', { id: 'errors-title' }, 'Failed rows by reason');
    if (job.progress.failed === 0 || job.status === 'cancelled') {
      show(errorsPart, title, notice(job.status === 'cancelled' ? 'A cancelled job keeps no results.' : 'No row failed.'));
      return;
    }
    const { lines, truncated } = await ndjsonLines<FailedRow>(`${path}/failed-rows`, MAX_FAILED_READ);
    const groups = new Map<string, { code: string; rows: number[] }>();
    for (const row of lines) {
      const group = groups.get(row.message) ?? { code: row.code, rows: [] };
      group.rows.push(row.index);
      groups.set(row.message, group);
    }
    const sorted = [...groups].sort((a, b) => b[1].rows.length - a[1].rows.length);
    show(
      errorsPart,
      title,
      truncated ? notice(`Grouped from the first ${count(MAX_FAILED_READ)} failed rows; download them all below.`) : null,
      table(
        'Failed rows grouped by reason, most frequent first',
        ['Reason', 'Code', 'Rows', 'First rows (index)'],
        sorted.map(([reason, group]) => [
          reason,
          h('code', {}, group.code),
          h('span', { 'data-figure': 'group-count' }, count(group.rows.length)),
          group.rows.slice(0, 10).join(', '),
        ]),
        { class: 'errors' },
      ),
    );
  };

  // The long-poll status path: each poll returns when the job finishes or after 2 s, whichever comes first.
  const poll = async (wait: number): Promise<boolean> => {
    try {
      const job = await getJson<JobStatusDocument>(`${path}?wait=${wait}`);
      if (!screen.live()) return false;
      draw(job);
      return !finished(job);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404)
        show(body, notice(`No job with id ${id}: it may have expired or been deleted.`, 'error'));
      else show(message, notice(`Could not read the job: ${(error as Error).message}`, 'error'));
      throw error;
    }
  };
  if (await poll(0).catch(() => false)) screen.repeat(2000, () => poll(2));
}
