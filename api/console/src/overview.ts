import { getJson } from './api.js';
import { badge, count, facts, h, notice, show, table, time } from './dom.js';
import { jobProgress, modelCell } from './jobs.js';
import { driftWord } from './drift.js';
import type { Screen } from './screen.js';
import type { DriftReport, JobListAnswer, JobStatusDocument, ModelDoc, RolloutState } from './types.js';

const DAY_MS = 24 * 3600 * 1000;
/** Pages of the job list the overview reads at most for one figure (1 000 jobs each). */
const MAX_PAGES = 5;

/** Every job of a filtered list, page after page, up to MAX_PAGES; `complete` false when more were left. */
async function allJobs(query: string): Promise<{ jobs: JobStatusDocument[]; complete: boolean }> {
  const jobs: JobStatusDocument[] = [];
  let next: string | null = `/v1/jobs?${query}&limit=1000`;
  for (let page = 0; next && page < MAX_PAGES; page++) {
    const answer: JobListAnswer = await getJson<JobListAnswer>(next);
    jobs.push(...answer.data);
    next = answer.next;
  }
  return { jobs, complete: next === null };
}

export interface ServingState {
  model: ModelDoc;
  rollout: RolloutState;
  /** Drift of the serving default over the last hour (null: the version keeps no baseline). */
  drift: DriftReport | null;
}

/** Each model with its rollout and the serving default's drift over the last hour. */
export async function servingStates(): Promise<ServingState[]> {
  const { models } = await getJson<{ models: ModelDoc[] }>('/v1/models');
  return Promise.all(
    models.map(async (model) => {
      const base = `/v1/models/${encodeURIComponent(model.name)}`;
      const serving = model.versions.find((v) => v.version === model.defaultVersion);
      const [rollout, drift] = await Promise.all([
        getJson<RolloutState>(`${base}/rollout`),
        serving?.driftBaseline ? getJson<DriftReport>(`${base}/versions/${encodeURIComponent(serving.version)}/drift?window=1h`) : null,
      ]);
      return { model, rollout, drift };
    }),
  );
}

export async function overviewScreen(screen: Screen): Promise<void> {
  const draw = async (): Promise<boolean> => {
    const since = new Date(Date.now() - DAY_MS).toISOString().replace(/\.\d+Z$/, 'Z');
    const [inFlight, lastDay, workers, serving] = await Promise.all([
      allJobs('status=queued,running'),
      allJobs(`created_after=${since}`),
      getJson<{ connected: number; queues: { name: string; workers: number }[] }>('/v1/workers'),
      servingStates(),
    ]);
    if (!screen.live()) return false;
    const atLeast = (n: number, complete: boolean): string => (complete ? count(n) : `${count(n)}+`);
    const failedJobs = lastDay.jobs.filter((j) => j.status === 'failed').length;
    const failedRows = lastDay.jobs.reduce((sum, j) => sum + j.progress.failed, 0);
    const drifting = serving.filter((s) => s.drift?.status === 'drift');
    const rollouts = serving.filter((s) => s.rollout.rollout.canary || s.rollout.rollout.shadow);
    show(
      screen.main,
      h('h1', { tabindex: -1 }, 'Overview'),
      facts([
        ['Jobs in flight', h('span', { 'data-figure': 'in-flight' }, atLeast(inFlight.jobs.length, inFlight.complete))],
        ['Failed jobs, last 24 h', h('span', { 'data-figure': 'failed-jobs' }, atLeast(failedJobs, lastDay.complete))],
        ['Failed rows, last 24 h', h('span', { 'data-figure': 'failed-rows' }, atLeast(failedRows, lastDay.complete))],
        // Inference workers are the chunk queue's consumers; the other queues' connections are the same processes again.
        [
          'Inference workers connected',
          h('span', { 'data-figure': 'workers' }, count(workers.queues.find((q) => q.name === 'chunks')?.workers ?? 0)),
        ],
        ['Models with major drift (1 h)', h('span', { 'data-figure': 'drifting' }, count(drifting.length))],
        ['Rollouts in canary or shadow', h('span', { 'data-figure': 'rollouts' }, count(rollouts.length))],
      ]),
      h('h2', {}, 'Jobs in flight'),
      inFlight.jobs.length === 0
        ? notice('No job is queued or running.')
        : table(
            'Jobs queued or running, newest first',
            ['Job', 'Model', 'Status', 'Progress', 'Created'],
            inFlight.jobs
              .slice(0, 20)
              .map((job) => [
                h('a', { href: `#/jobs/${job.jobId}` }, job.jobId.slice(0, 8)),
                modelCell(job),
                badge(job.status),
                jobProgress(job),
                time(job.createdAt),
              ]),
          ),
      h('h2', {}, 'Models with major drift'),
      drifting.length === 0
        ? notice('No serving model drifts past the major threshold in the last hour.')
        : h(
            'ul',
            {},
            ...drifting.map((s) =>
              h(
                'li',
                {},
                h('a', { href: `#/drift/${s.model.name}/${s.model.defaultVersion}` }, `${s.model.name}@${s.model.defaultVersion}`),
                ' ',
                driftWord(s.drift?.status ?? 'insufficient-data'),
              ),
            ),
          ),
      h('h2', {}, 'Rollouts in canary or shadow'),
      rollouts.length === 0
        ? notice('No model has a canary or a shadow.')
        : table(
            'Models whose rollout has a canary or shadow',
            ['Model', 'Default', 'Canary', 'Shadow'],
            rollouts.map(({ model, rollout }) => [
              h('a', { href: `#/models/${model.name}` }, model.name),
              rollout.servingDefault,
              rollout.rollout.canary ? `${rollout.rollout.canary.version} (${rollout.rollout.canary.percent} %)` : '—',
              rollout.rollout.shadow ? `${rollout.rollout.shadow.version} (${rollout.rollout.shadow.percent} %)` : '—',
            ]),
          ),
    );
    return true;
  };
  await draw();
  screen.repeat(5000, draw);
}
