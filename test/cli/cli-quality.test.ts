import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { cliInProcess } from '../helpers/cli';
import { loadGolden } from '../helpers/golden';
import { startStack, type Stack } from '../helpers/stack';

// `onnx-batch labels` and `onnx-batch quality` against the real API, worker and iris models.

const ACME = 'acme-key-0123456789abcdef';
const LABELS = ['setosa', 'versicolor', 'virginica'];

describe('onnx-batch labels and quality', () => {
  let stack: Stack;
  let dir: string;
  let jobId: string;
  const cli = (...args: string[]) => cliInProcess(...args, '--url', stack.url, '--api-key', ACME);

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: `acme:${ACME}`, RATE_LIMIT_PER_MINUTE: '100000' });
    dir = mkdtempSync(path.join(os.tmpdir(), 'cli-quality-'));
    const inputs = (loadGolden('iris', '1').inputs as Record<string, number>[]).map((row, i) => ({ id: `row-${i}`, ...row }));
    const submitted = await request(stack.url)
      .post('/v1/batch-predict')
      .set('authorization', `Bearer ${ACME}`)
      .send({ model: 'iris', version: '1', inputs });
    jobId = String(submitted.body.jobId);
    expect((await cli('wait', jobId)).code).toBe(0);
  });

  afterAll(async () => {
    rmSync(dir, { recursive: true, force: true });
    await stack.close();
  });

  it('when a CSV of labels by index is sent for a job, then it reports what they did and the job quality shows them', async () => {
    const file = path.join(dir, 'labels.csv');
    writeFileSync(file, `index,label\n${Array.from({ length: 150 }, (_, i) => `${i},${LABELS[Math.floor(i / 50)]}`).join('\n')}\n`);

    const sent = await cli('labels', jobId, file);
    expect(sent.code).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ jobId, labels: 150, added: 150 });
    expect(sent.stderr).toContain('150 label(s) for job');

    const again = await cli('labels', jobId, file);
    expect(JSON.parse(again.stdout)).toMatchObject({ added: 0, unchanged: 150 });

    const job = await cli('quality', jobId, '--json');
    expect(job.code).toBe(0);
    const quality = JSON.parse(job.stdout) as { labelledRows: number; accuracy: number };
    expect(quality.labelledRows).toBe(150);

    const table = await cli('quality', 'iris', '--window', '24h');
    expect(table.code).toBe(0);
    const [header, line] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^VERSION\s+ARM\s+PREDICTED\s+LABELLED\s+ACCURACY\s+ESTIMATED\s+MACRO-F1\s+LOG-LOSS\s+REFERENCE$/);
    expect(line).toMatch(new RegExp(`^1\\s+pinned\\s+150\\s+150\\s+${quality.accuracy.toFixed(4)}\\s`));
  });

  it('when NDJSON labels name rows by id without a job, then they find their rows; a bad label exits 3 naming its line', async () => {
    const file = path.join(dir, 'by-id.ndjson');
    writeFileSync(file, `${JSON.stringify({ id: 'row-0', label: 'virginica' })}\n`);
    const sent = await cli('labels', file);
    expect(sent.code).toBe(0);
    expect(JSON.parse(sent.stdout)).toMatchObject({ labels: 1, replaced: 1, jobs: [jobId] });

    writeFileSync(file, `${JSON.stringify({ id: 'row-1', label: 'rose' })}\n`);
    const bad = await cli('labels', file);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/OB_ERR_INVALID_LABELS/);
    expect(bad.stderr).toMatch(/line 1, field 'label': 'rose' is not a label of iris/);

    const unknownFormat = await cli('labels', jobId, path.join(dir, 'labels.txt'));
    expect(unknownFormat.code).toBe(2);
  });
});
