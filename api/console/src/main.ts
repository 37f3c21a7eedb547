import { apiKey, ApiError, getJson, whenUnauthorized } from './api.js';
import { h, notice, show } from './dom.js';
import type { Me, Screen } from './screen.js';
import { driftScreen } from './drift.js';
import { jobScreen, jobsScreen } from './jobs.js';
import { modelScreen, modelsScreen } from './models.js';
import { overviewScreen } from './overview.js';
import { schedulesScreen } from './schedules.js';

type Render = (screen: Screen) => Promise<void>;

/** `#/<name>/<params…>?<query>` → the screen that draws it. */
const ROUTES: Record<string, { title: string; render: (params: string[]) => Render }> = {
  '': { title: 'Overview', render: () => overviewScreen },
  jobs: { title: 'Jobs', render: (params) => (params.length > 0 ? jobScreen : jobsScreen) },
  models: { title: 'Models', render: (params) => (params.length > 0 ? modelScreen : modelsScreen) },
  drift: { title: 'Drift', render: () => driftScreen },
  schedules: { title: 'Schedules', render: () => schedulesScreen },
};

const main = document.getElementById('view') as HTMLElement;
const nav = document.getElementById('nav') as HTMLElement;
const banner = document.getElementById('banner') as HTMLElement;
const session = document.getElementById('session') as HTMLElement;

let me: Me | null = null;
/** Incremented on every navigation: work started for an older screen sees it is no longer live. */
let generation = 0;
const MIN_POLL_MS = 2000;

function parseHash(): { name: string; params: string[]; query: URLSearchParams } {
  const [path = '', search = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name = '', ...params] = path.split('/').filter(Boolean).map(decodeURIComponent);
  return { name, params, query: new URLSearchParams(search) };
}

function repeatWhileShown(mine: number, minMs: number, task: () => Promise<boolean>): void {
  const interval = Math.max(MIN_POLL_MS, minMs);
  const run = async (): Promise<void> => {
    if (mine !== generation) return;
    if (document.visibilityState !== 'visible') {
      document.addEventListener('visibilitychange', () => void run(), { once: true });
      return;
    }
    const started = performance.now();
    let again: boolean;
    try {
      again = await task();
    } catch (error) {
      // A failed poll is shown by the task; polling goes on unless the key was refused.
      again = !(error instanceof ApiError && (error.status === 401 || error.status === 403 || error.status === 404));
    }
    if (again && mine === generation) setTimeout(() => void run(), Math.max(0, interval - (performance.now() - started)));
  };
  setTimeout(() => void run(), interval);
}

async function render(): Promise<void> {
  const mine = ++generation;
  const { name, params, query } = parseHash();
  const route = ROUTES[name];
  for (const link of nav.querySelectorAll('a')) {
    if (link.getAttribute('href') === `#/${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!me) return;
  if (!route) {
    document.title = 'Not found · onnx-batch';
    show(main, h('h1', { tabindex: -1 }, 'Not found'), notice(`There is no screen called “${name}”.`));
    return;
  }
  document.title = `${route.title} · onnx-batch console`;
  const screen: Screen = {
    me,
    main,
    params,
    query,
    live: () => mine === generation,
    repeat: (minMs, task) => repeatWhileShown(mine, minMs, task),
    refresh: () => void render(),
  };
  try {
    await route.render(params)(screen);
  } catch (error) {
    if (mine !== generation || (error instanceof ApiError && error.status === 401)) return;
    show(main, h('h1', { tabindex: -1 }, route.title), notice(`Could not load this screen: ${(error as Error).message}`, 'error'));
  }
  main.querySelector<HTMLElement>('h1')?.focus({ preventScroll: true });
}

function showSession(): void {
  if (!me) {
    session.replaceChildren();
    banner.replaceChildren();
    return;
  }
  const forget = h('button', { type: 'button', onclick: signOut }, 'Forget key');
  const roles = me.roles.join(', ');
  show(session, h('span', {}, `Tenant ${me.tenant} · roles: ${roles}`), ' ', me.auth === 'keys' ? forget : null);
  show(
    banner,
    me.auth === 'off'
      ? h(
          'p',
          { class: 'banner', role: 'note' },
          'Authentication is off (no API key is configured): anyone who can reach this address can read and change everything. ' +
            'Set API_KEYS before serving other hosts.',
        )
      : null,
  );
}

function signOut(): void {
  apiKey.forget();
  me = null;
  showSession();
  keyForm(null);
}

/** The key form: the key goes to sessionStorage and is checked with GET /v1/me before anything else. */
function keyForm(problem: string | null): void {
  ++generation;
  document.title = 'API key · onnx-batch console';
  const input = h('input', { id: 'api-key', name: 'api-key', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const status = h('div', { id: 'key-status' }, problem ? notice(problem, 'error') : null);
  const form = h(
    'form',
    { class: 'key-form' },
    h('h1', { tabindex: -1 }, 'Sign in with an API key'),
    h('p', {}, 'The key stays in this tab only (sessionStorage) and is sent as an Authorization header; close the tab to forget it.'),
    h('p', {}, h('label', { for: 'api-key' }, 'API key'), h('br'), input),
    h('p', {}, h('button', { type: 'submit' }, 'Open the console')),
    status,
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    apiKey.set(input.value.trim());
    void start();
  });
  show(main, form);
  input.focus();
}

async function start(): Promise<void> {
  try {
    me = await getJson<Me>('/v1/me');
  } catch (error) {
    const status = error instanceof ApiError ? error.status : null;
    const hadKey = apiKey.get() !== null;
    apiKey.forget();
    me = null;
    showSession();
    if (status === 401) keyForm(hadKey ? 'That key was refused: it is not a valid API key.' : null);
    else if (status === 403) keyForm('That key lacks the read role, which the console needs to show anything.');
    else keyForm(`The API did not answer: ${(error as Error).message}`);
    return;
  }
  showSession();
  await render();
}

whenUnauthorized(() => {
  if (!me) return;
  apiKey.forget();
  me = null;
  showSession();
  keyForm('The API no longer accepts the key: enter it again.');
});
// Only `#/…` is a screen; the skip link moves focus to the content without leaving the screen.
window.addEventListener('hashchange', () => {
  if (location.hash === '' || location.hash.startsWith('#/')) void render();
});
document.querySelector('a.skip')?.addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});
void start();
