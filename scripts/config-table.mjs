// Regenerates the README's configuration table from CONFIG_VARIABLES (shared/src/config.ts),
// the single source of truth: `npm run docs:config`. test/unit/config.test.ts fails when the README is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const { CONFIG_VARIABLES } = require(path.join(root, 'shared', 'dist', 'config.js'));

export function configTable() {
  const shown = (name, spec) => {
    if (name === 'WORKERS') return 'number of CPUs';
    if (name === 'API_PROCESSES') return 'max(1, ⌊CPUs ÷ 2⌋)';
    if (name === 'MODELS_DIR') return '`models/` of the checkout';
    if (name === 'REDIS_WAIT_REPLICAS') return '`1` with REDIS_SENTINELS, else `0`';
    return spec.default === '' ? '(empty)' : `\`${spec.default}\``;
  };
  const rows = Object.entries(CONFIG_VARIABLES).map(
    ([name, spec]) => `| \`${name}\` | ${shown(name, spec)} | ${spec.doc.replace(/\|/g, '\\|')} |`,
  );
  return ['| variable | default | meaning |', '|---|---|---|', ...rows].join('\n');
}

const START = '<!-- config:start -->';
const END = '<!-- config:end -->';

if (process.argv[1] === new URL(import.meta.url).pathname) {
  const file = path.join(root, 'README.md');
  const readme = readFileSync(file, 'utf8');
  const from = readme.indexOf(START);
  const to = readme.indexOf(END);
  if (from === -1 || to === -1) throw new Error(`README.md lacks ${START} … ${END}`);
  writeFileSync(file, `${readme.slice(0, from + START.length)}\n${configTable()}\n${readme.slice(to)}`);
}
