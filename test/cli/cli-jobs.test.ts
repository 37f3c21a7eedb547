import request from 'supertest';
import { cliInProcess } from '../helpers/cli';
import { startStack, type Stack } from '../helpers/stack';

// `onnx-batch jobs` against the real API (no worker: submitted jobs stay queued until cancelled).

const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const ROW = [5.1, 3.5, 1.4, 0.2];

describe('onnx-batch jobs', () => {
  let stack: Stack;
  const ids: string[] = [];
  const jobs = (...args: string[]) => cliInProcess('jobs', ...args, '--url', stack.url, '--api-key', ACME);

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: `acme:${ACME},globex:${GLOBEX}`, RATE_LIMIT_PER_MINUTE: '100000' }, false);
    for (let i = 0; i < 3; i++) {
      const submitted = await request(stack.url)
        .post('/v1/batch-predict')
        .set('authorization', `Bearer ${ACME}`)
        .send({ model: 'iris', inputs: [ROW, ROW] });
      ids.push(submitted.body.jobId as string);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    await request(stack.url).post(`/v1/batch-result/${ids[0]}/cancel`).set('authorization', `Bearer ${ACME}`).expect(200);
  });

  afterAll(async () => {
    await stack.close();
  });

  it('when asked for a table, then it prints id, model@version, status, done/total/failed and created, newest first', async () => {
    const run = await jobs();
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+MODEL\s+STATUS\s+DONE\/TOTAL\/FAILED\s+CREATED$/);
    expect(lines.slice(1).map((line) => line.split(/\s+/)[0])).toEqual([...ids].reverse());
    expect(lines[3]).toMatch(new RegExp(`^${ids[0]}\\s+iris@\\S+\\s+cancelled\\s+0/2/0\\s+\\d{4}-\\d{2}-\\d{2}T`));
  });

  it('when asked for JSON with a status filter, then it prints one status document a line', async () => {
    const run = await jobs('--json', '--status', 'queued');
    expect(run.code).toBe(0);
    const documents = run.stdout
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as { jobId: string; status: string });
    expect(documents.map((d) => d.jobId)).toEqual([ids[2], ids[1]]);
    expect(documents.every((d) => d.status === 'queued')).toBe(true);
  });

  it('when --all is given with --limit 1, then it follows every page; without it, one page and a hint on stderr', async () => {
    const all = await jobs('--all', '--limit', '1', '--json');
    expect(
      all.stdout
        .trimEnd()
        .split('\n')
        .map((line) => (JSON.parse(line) as { jobId: string }).jobId),
    ).toEqual([...ids].reverse());
    const one = await jobs('--limit', '1');
    expect(one.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(one.stderr).toContain('--all');
  });

  it('when filtered by a model with no jobs, then the table has only its header', async () => {
    const run = await jobs('--model', 'spam');
    expect(run.stdout.trimEnd().split('\n')).toHaveLength(1);
  });

  it('when another tenant lists, then it sees none of these jobs', async () => {
    const run = await cliInProcess('jobs', '--json', '--url', stack.url, '--api-key', GLOBEX);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('');
  });

  it('EXPECTED FAILURE – when --status or --limit is bad, then it is a usage error naming it', async () => {
    const status = await jobs('--status', 'done');
    expect(status.code).not.toBe(0);
    expect(status.stderr).toContain('--status');
    const limit = await jobs('--limit', '1001');
    expect(limit.code).not.toBe(0);
    expect(limit.stderr).toContain('--limit');
  });
});
