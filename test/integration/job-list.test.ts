import request from 'supertest';
import type { Redis } from 'ioredis';
import { JobStore, newJobId, RedisKeys } from '@onnx-batch/shared';
import { newRedis } from '../helpers/env';
import { queuedJobRecord } from '../helpers/job-records';
import { startStack, type Stack } from '../helpers/stack';

// GET /v1/jobs against a real Redis: jobs are submitted through the API (no worker: they stay
// queued) or committed straight into the store with chosen creation times, then listed.

const ACME = 'acme-key-0123456789abcdef';
const GLOBEX = 'globex-key-0123456789abcdef';
const ROW = [5.1, 3.5, 1.4, 0.2];
const BASE = Date.parse('2026-03-01T00:00:00.000Z');

interface Listed {
  data: { jobId: string; status: string; model: { name: string }; createdAt: string; results?: unknown }[];
  has_more: boolean;
  first_id: string | null;
  last_id: string | null;
  next: string | null;
}

describe('GET /v1/jobs', () => {
  let stack: Stack;
  let redis: Redis;
  let store: JobStore;
  let keys: RedisKeys;

  beforeAll(async () => {
    stack = await startStack({ API_KEYS: `acme:${ACME},globex:${GLOBEX}`, RATE_LIMIT_PER_MINUTE: '100000' }, false);
    redis = newRedis();
    // A store of the test's own whose finished jobs expire after 1 s.
    store = new JobStore(redis, stack.config.REDIS_PREFIX, 1);
    keys = store.keys;
  });

  afterAll(async () => {
    await redis.quit();
    await stack.close();
  });

  const list = async (query: string, key = ACME): Promise<Listed> => {
    const response = await request(stack.url).get(`/v1/jobs${query}`).set('authorization', `Bearer ${key}`);
    expect(response.status).toBe(200);
    return response.body as Listed;
  };
  const ids = (page: Listed): string[] => page.data.map((job) => job.jobId);

  /** Commits a one-chunk job of `tenant` created at `created` (ms), as the API would. */
  const commit = async (tenant: string, created: number, model = 'iris', id = newJobId()): Promise<string> => {
    const record = queuedJobRecord({ id, tenant, model, createdAt: new Date(created).toISOString() });
    const outcome = await store.commit(record, { lastInput: Buffer.from('x') });
    expect(outcome.state).toBe('committed');
    return id;
  };

  it('when jobs are submitted through the API, then the list shows them newest first, as status documents without results', async () => {
    const submit = async () =>
      (
        await request(stack.url)
          .post('/v1/batch-predict')
          .set('authorization', `Bearer ${ACME}`)
          .send({ model: 'iris', inputs: [ROW] })
      ).body.jobId as string;
    const first = await submit();
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = await submit();
    const page = await list('?limit=2');
    expect(ids(page)).toEqual([second, first]);
    const status = await request(stack.url).get(`/v1/batch-result/${second}`).set('authorization', `Bearer ${ACME}`);
    const { results: _results, ...document } = status.body as Record<string, unknown>;
    expect(page.data[0]).toEqual(document);
    expect(page.data[0]).not.toHaveProperty('results');
    expect(page.first_id).toBe(second);
    expect(page.last_id).toBe(first);
  });

  describe('paging and filters over committed jobs', () => {
    let jobs: string[];
    const tenant = 'acme';

    beforeAll(async () => {
      // Clear what other tests of acme submitted; then six jobs one ms apart, oldest first: two of spam.
      await redis.del(keys.tenantJobs(tenant), keys.tenantJobsExpiring(tenant));
      jobs = [];
      for (let i = 0; i < 6; i++) jobs.push(await commit(tenant, BASE + i, i % 3 === 0 ? 'spam' : 'iris'));
      await store.cancel(jobs[1] as string, new Date());
      await store.cancel(jobs[4] as string, new Date());
      // Cancelled by the 1 s store: give them the API's TTL back so they do not expire under the tests.
      for (const id of [jobs[1], jobs[4]]) await redis.persist(keys.job(id as string));
      await redis.zrem(keys.tenantJobsExpiring(tenant), jobs[1] as string, jobs[4] as string);
    });

    const newestFirst = () => [...jobs].reverse();

    it('when paged by 2, then three pages give every job once, has_more and next saying where to go on', async () => {
      const seen: string[] = [];
      let page = await list('?limit=2');
      const hasMore: boolean[] = [page.has_more];
      seen.push(...ids(page));
      while (page.next) {
        page = await list(page.next.slice('/v1/jobs'.length));
        hasMore.push(page.has_more);
        seen.push(...ids(page));
      }
      expect(seen).toEqual(newestFirst());
      expect(hasMore).toEqual([true, true, false]);
      expect(page.next).toBeNull();
    });

    it('when `after` is the last job id of a page, then the next page follows it', async () => {
      const first = await list('?limit=2');
      const second = await list(`?limit=2&after=${first.last_id}`);
      expect(ids(second)).toEqual(newestFirst().slice(2, 4));
    });

    it('when filtered by status, one or a comma list, then only those jobs come', async () => {
      expect(ids(await list('?status=cancelled'))).toEqual([jobs[4], jobs[1]]);
      expect(ids(await list('?status=queued'))).toEqual([jobs[5], jobs[3], jobs[2], jobs[0]]);
      expect(ids(await list('?status=cancelled,queued'))).toEqual(newestFirst());
      expect(ids(await list('?status=completed'))).toEqual([]);
    });

    it('when filtered by model, then only its jobs come', async () => {
      expect(ids(await list('?model=spam'))).toEqual([jobs[3], jobs[0]]);
    });

    it('when filtered by creation time, then both bounds are exclusive', async () => {
      const at = (i: number) => encodeURIComponent(new Date(BASE + i).toISOString());
      expect(ids(await list(`?created_after=${at(3)}`))).toEqual([jobs[5], jobs[4]]);
      expect(ids(await list(`?created_before=${at(2)}`))).toEqual([jobs[1], jobs[0]]);
      expect(ids(await list(`?created_after=${at(1)}&created_before=${at(4)}&limit=1`)).length).toBe(1);
      const offset = encodeURIComponent('2026-03-01T01:00:00.002+01:00'); // = BASE + 2
      expect(ids(await list(`?created_after=${offset}`))).toEqual([jobs[5], jobs[4], jobs[3]]);
    });

    it('when limit is 1 or 1000, then it is taken; when 0 or 1001, then 400 names limit', async () => {
      expect((await list('?limit=1')).data).toHaveLength(1);
      expect((await list('?limit=1000')).data).toHaveLength(6);
      for (const limit of ['0', '1001', 'ten', '-1']) {
        const response = await request(stack.url).get(`/v1/jobs?limit=${limit}`).set('authorization', `Bearer ${ACME}`);
        expect(response.status).toBe(400);
        expect(response.headers['content-type']).toContain('application/problem+json');
        expect(response.body.errors).toEqual([expect.objectContaining({ field: 'limit' })]);
      }
    });

    it('when another tenant lists, then it sees none of these, and cannot page from their ids', async () => {
      const page = await list('', GLOBEX);
      expect(ids(page).filter((id) => jobs.includes(id))).toEqual([]);
      const response = await request(stack.url).get(`/v1/jobs?after=${jobs[3]}`).set('authorization', `Bearer ${GLOBEX}`);
      expect(response.status).toBe(400);
      expect(response.body.errors[0].field).toBe('after');
    });
  });

  it('EXPECTED FAILURE – when a parameter is bad, then 400 problem+json names it', async () => {
    const cases: [string, string][] = [
      ['?status=done', 'status'],
      ['?status=queued,nope', 'status'],
      ['?created_after=yesterday', 'created_after'],
      ['?created_before=2026-03-01', 'created_before'],
      ['?after=not-a-cursor', 'after'],
      [`?after=${Buffer.from('12.zz').toString('base64url')}`, 'after'],
      [`?after=${newJobId()}`, 'after'],
      ['?model=', 'model'],
      ['?sort=asc', 'sort'],
    ];
    for (const [query, field] of cases) {
      const response = await request(stack.url).get(`/v1/jobs${query}`).set('authorization', `Bearer ${ACME}`);
      expect({ query, status: response.status, field: response.body.errors?.[0]?.field }).toEqual({ query, status: 400, field });
      expect(response.headers['content-type']).toContain('application/problem+json');
    }
  });

  it('when the caller has no key, then 401', async () => {
    expect((await request(stack.url).get('/v1/jobs')).status).toBe(401);
  });

  describe('jobs that go', () => {
    const tenant = 'globex';
    const page = (limit = 10) =>
      store.list.page({ tenant, statuses: null, model: null, createdAfter: null, createdBefore: null, limit, after: null });

    beforeEach(async () => {
      await redis.del(keys.tenantJobs(tenant), keys.tenantJobsExpiring(tenant));
    });

    it('when a job is deleted, then it is no longer listed and its entries are gone', async () => {
      const kept = await commit(tenant, BASE + 1);
      const deleted = await commit(tenant, BASE + 2);
      const response = await request(stack.url).delete(`/v1/batch-result/${deleted}`).set('authorization', `Bearer ${GLOBEX}`);
      expect(response.status).toBe(204);
      expect(ids(await list('', GLOBEX))).toEqual([kept]);
      expect(await redis.zscore(keys.tenantJobs(tenant), deleted)).toBeNull();
      expect(await redis.zscore(keys.tenantJobsExpiring(tenant), deleted)).toBeNull();
    });

    it('when a finished job expires, then the next list request does not return it and prunes its entries', async () => {
      const kept = await commit(tenant, BASE + 1);
      const expiring = await commit(tenant, BASE + 2);
      expect(await store.cancel(expiring, new Date())).toBe('cancelled');
      expect(Number(await redis.zscore(keys.tenantJobsExpiring(tenant), expiring))).toBeGreaterThan(Date.now());
      await new Promise((resolve) => setTimeout(resolve, 1100)); // the store's TTL is 1 s
      expect(await redis.exists(keys.job(expiring))).toBe(0);
      expect(ids(await list('', GLOBEX))).toEqual([kept]);
      expect(await redis.zscore(keys.tenantJobs(tenant), expiring)).toBeNull();
      expect(await redis.zscore(keys.tenantJobsExpiring(tenant), expiring)).toBeNull();
    });

    it('when a job record vanishes without its entry being due (evicted), then it is skipped and its entry removed', async () => {
      const kept = await commit(tenant, BASE + 1);
      const evicted = await commit(tenant, BASE + 2);
      await redis.del(keys.job(evicted));
      expect((await page()).records.map((r) => r.id)).toEqual([kept]);
      expect(await redis.zscore(keys.tenantJobs(tenant), evicted)).toBeNull();
    });

    it('when a listed job is listed again (the recovery sweep repairing a cluster commit), then it is still listed once', async () => {
      const id = await commit(tenant, BASE + 1);
      const record = await store.get(id);
      if (!record) throw new Error('the job is gone');
      await store.list.add(record);
      await store.list.add(record);
      expect((await page()).records.map((r) => r.id)).toEqual([id]);
    });

    it('when two jobs are created in the same millisecond, then pages of one list each once', async () => {
      const older = await commit(tenant, BASE);
      const a = await commit(tenant, BASE + 5, 'iris', `00${newJobId().slice(2)}`);
      const b = await commit(tenant, BASE + 5, 'iris', `ff${newJobId().slice(2)}`);
      const seen: string[] = [];
      let next = '?limit=1';
      for (let i = 0; i < 5 && next; i++) {
        const listed = await list(next, GLOBEX);
        seen.push(...ids(listed));
        next = listed.next ? listed.next.slice('/v1/jobs'.length) : '';
        // The last id works as well as the cursor.
        if (i === 0) expect(ids(await list(`?limit=1&after=${listed.last_id}`, GLOBEX))).toEqual([a]);
      }
      expect(seen).toEqual([b, a, older]);
    });

    it('when a filter is sparse, then a page looks at no more than 10 × limit entries and says has_more with a cursor', async () => {
      const wanted = await commit(tenant, BASE);
      await store.cancel(wanted, new Date());
      await redis.persist(keys.job(wanted));
      await redis.zrem(keys.tenantJobsExpiring(tenant), wanted);
      for (let i = 1; i <= 15; i++) await commit(tenant, BASE + i);
      const first = await list('?status=cancelled&limit=1', GLOBEX);
      expect(first.data).toEqual([]);
      expect(first.has_more).toBe(true);
      const second = await list(first.next?.slice('/v1/jobs'.length) ?? '', GLOBEX);
      expect(ids(second)).toEqual([wanted]);
      expect(second.has_more).toBe(false);
    });
  });
});
