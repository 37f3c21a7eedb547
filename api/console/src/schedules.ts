import { ApiError, getJson } from './api.js';
import { badge, count, h, notice, show, table, time } from './dom.js';
import type { Screen } from './screen.js';
import type { RunDoc, ScheduleDoc } from './types.js';

/** Schedules with their next run, and each one's last runs linked to the jobs they made. */
export async function schedulesScreen(screen: Screen): Promise<void> {
  let schedules: ScheduleDoc[];
  try {
    ({ schedules } = await getJson<{ schedules: ScheduleDoc[] }>('/v1/schedules'));
  } catch (error) {
    if (!(error instanceof ApiError) || error.status === 401) throw error;
    show(screen.main, h('h1', { tabindex: -1 }, 'Schedules'), notice(`Schedules are not available: ${error.message}`));
    return;
  }
  const runs = await Promise.all(
    schedules.map((s) => getJson<{ runs: RunDoc[] }>(`/v1/schedules/${encodeURIComponent(s.name)}/runs`).then((r) => r.runs.slice(0, 5))),
  );
  if (!screen.live()) return;
  show(
    screen.main,
    h('h1', { tabindex: -1 }, 'Schedules'),
    schedules.length === 0
      ? notice('No schedule is defined.')
      : table(
          'Schedules',
          ['Name', 'Model', 'Cron', 'Time zone', 'Next run', 'Enabled'],
          schedules.map((s) => [
            s.name,
            `${s.model}@${s.version ?? 'default'}`,
            h('code', {}, s.cron),
            s.timezone,
            time(s.nextRunAt),
            // A schedule has no paused state: it is enabled while the scheduler has its next tick.
            s.nextRunAt ? 'yes' : 'no next run known',
          ]),
        ),
    ...schedules.flatMap((s, i) => [
      h('h2', {}, `Last runs of ${s.name}`),
      (runs[i] ?? []).length === 0
        ? notice('It has not run yet.')
        : table(
            `Last runs of ${s.name}, newest first`,
            ['Tick', 'Status', 'Files and their jobs', 'Finished'],
            (runs[i] ?? []).map((run) => [
              time(run.tick),
              badge(run.status),
              h(
                'ul',
                {},
                ...run.files.map((f) =>
                  h(
                    'li',
                    {},
                    f.input.split('/').pop() ?? f.input,
                    ': ',
                    f.jobId ? h('a', { href: `#/jobs/${f.jobId}` }, f.jobId.slice(0, 8)) : f.status,
                    ` (${count(f.rows)} rows, ${count(f.failedRows)} failed)`,
                  ),
                ),
                run.error ? h('li', {}, run.error) : null,
              ),
              time(run.finishedAt),
            ]),
          ),
    ]),
  );
}
