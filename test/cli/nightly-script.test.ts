import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { ROOT } from '../helpers/env';
import { CLI } from '../helpers/cli';
import { loadGolden } from '../helpers/golden';
import { startStack, type Stack } from '../helpers/stack';

// cli/examples/nightly.sh, the README's nightly script, run by sh as cron would: two nights in a
// row against the real API and worker. The second night posts the first night's labels (by the
// ids the rows were submitted with), scores its own rows and prints the week's quality.

const SCRIPT = path.join(ROOT, 'cli', 'examples', 'nightly.sh');
const ACME = 'acme-key-0123456789abcdef';
const LABELS = ['setosa', 'versicolor', 'virginica'];

function runScript(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('sh', [SCRIPT], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('cli/examples/nightly.sh', () => {
  let stack: Stack;
  let data: string;

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: `acme:${ACME}`, RATE_LIMIT_PER_MINUTE: '100000' });
    data = mkdtempSync(path.join(os.tmpdir(), 'nightly-'));
    for (const dir of ['in', 'out', 'labels']) mkdirSync(path.join(data, dir));
    const inputs = loadGolden('iris', '1').inputs as Record<string, number>[];
    const csv = (night: string) =>
      `id,sepal_length,sepal_width,petal_length,petal_width\n${inputs
        .map((r, i) => `${night}-${i},${r.sepal_length},${r.sepal_width},${r.petal_length},${r.petal_width}`)
        .join('\n')}\n`;
    writeFileSync(path.join(data, 'in', 'rows-2026-12-06.csv'), csv('2026-12-06'));
    writeFileSync(path.join(data, 'in', 'rows-2026-12-07.csv'), csv('2026-12-07'));
    // The first night's truth, as it arrives a day later.
    writeFileSync(
      path.join(data, 'labels', 'labels-2026-12-06.csv'),
      `id,label\n${inputs.map((_, i) => `2026-12-06-${i},${LABELS[Math.floor(i / 50)]}`).join('\n')}\n`,
    );
  });

  afterAll(async () => {
    rmSync(data, { recursive: true, force: true });
    await stack.close();
  });

  const env = (today: string, yesterday: string) => ({
    ONNX_BATCH_URL: stack.url,
    ONNX_BATCH_API_KEY: ACME,
    ONNX_BATCH: `${process.execPath} ${CLI}`,
    DATA: data,
    TODAY: today,
    YESTERDAY: yesterday,
  });

  it('when it runs two nights, then the second posts the first night’s labels, scores its rows and prints the quality', async () => {
    const first = await runScript(env('2026-12-06', '2026-12-05'));
    expect(first.code).toBe(0);
    expect(first.stderr).toContain('no labels for 2026-12-05');
    expect(
      readFileSync(path.join(data, 'out', 'results-2026-12-06.csv'), 'utf8')
        .trimEnd()
        .split('\n'),
    ).toHaveLength(151);

    const second = await runScript(env('2026-12-07', '2026-12-06'));
    expect(second.code).toBe(0);
    const applied = JSON.parse(readFileSync(path.join(data, 'labels', 'labels-2026-12-06.applied.json'), 'utf8')) as {
      added: number;
      jobs: string[];
    };
    expect(applied.added).toBe(150);
    expect(applied.jobs).toHaveLength(1);
    expect(
      readFileSync(path.join(data, 'out', 'results-2026-12-07.csv'), 'utf8')
        .trimEnd()
        .split('\n'),
    ).toHaveLength(151);
    // Both nights ran on the default (version 2, routed): 300 predicted rows, the first night's 150 labelled.
    const [header, line] = second.stdout.trimEnd().split('\n').slice(-2);
    expect(header).toMatch(/^VERSION\s+ARM\s+PREDICTED\s+LABELLED\s+ACCURACY/);
    expect(line).toMatch(/^2\s+default\s+300\s+150\s+1\.0000\s/);
    const job = await request(stack.url)
      .get(`/v1/batch-result/${applied.jobs[0] ?? ''}/quality`)
      .set('authorization', `Bearer ${ACME}`);
    expect(job.body).toMatchObject({ labelledRows: 150, accuracy: 1 });
  });
});
