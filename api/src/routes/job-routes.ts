import { Router, type Request, type Response } from 'express';
import { JOB_STATUSES, jobStatusDocument, ProblemError, type JobListAnswer, type JobStatus } from '@onnx-batch/contracts';
import { JOB_ID_PATTERN, type JobListCursor, type JobListQuery, type JobStore } from '@onnx-batch/shared';
import { GUARD_CODES, json, problemResponses, ref, type Paths, type Schema } from '../openapi-parts';

export interface JobRouteDeps {
  store: JobStore;
}

/** Most jobs one page of `GET /v1/jobs` holds, and how many it holds when not told. */
export const MAX_JOB_PAGE = 1000;
export const DEFAULT_JOB_PAGE = 100;

const BASE_PATH = '/v1';
const QUERY_FIELDS = ['status', 'model', 'created_after', 'created_before', 'limit', 'after'] as const;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const CURSOR = /^(\d{1,16})\.([0-9a-f-]{36})$/;

/** `GET /v1/jobs`: the caller's tenant's jobs, newest first, from its job list (shared/src/jobs/job-list.ts, ADR 0008). */
export function jobRoutes(deps: JobRouteDeps): Router {
  const router = Router();
  router.get('/jobs', async (req: Request, res: Response) => {
    const tenant = req.caller.tenant;
    const raw = req.query as Record<string, unknown>;
    const query = await listQuery(deps.store, tenant, raw);
    const page = await deps.store.list.page(query);
    const data = page.records.map((record) => jobStatusDocument(record, BASE_PATH));
    const answer: JobListAnswer = {
      data,
      has_more: page.hasMore,
      first_id: data[0]?.jobId ?? null,
      last_id: data[data.length - 1]?.jobId ?? null,
      next: page.next ? nextUrl(raw, page.next) : null,
    };
    res.json(answer);
  });
  return router;
}

/** The list query of a request, or the 400 problem naming the first bad parameter. */
async function listQuery(store: JobStore, tenant: string, raw: Record<string, unknown>): Promise<JobListQuery> {
  for (const name of Object.keys(raw)) {
    if (!(QUERY_FIELDS as readonly string[]).includes(name)) invalid(name, 'is not a known query parameter');
  }
  const text = (name: string): string | null => {
    const value = raw[name];
    if (value === undefined) return null;
    if (typeof value !== 'string') return invalid(name, 'must be given once');
    return value;
  };
  const status = text('status');
  const statuses = status === null ? null : status.split(',').map((s) => s.trim());
  for (const s of statuses ?? []) {
    if (!(JOB_STATUSES as readonly string[]).includes(s)) invalid('status', `must be one or a comma list of ${JOB_STATUSES.join(', ')}`);
  }
  const model = text('model');
  if (model !== null && (model.length === 0 || model.length > 64)) invalid('model', 'must be a model name (1–64 characters)');
  const limitText = text('limit');
  const limit = limitText === null ? DEFAULT_JOB_PAGE : /^\d{1,5}$/.test(limitText) ? Number(limitText) : NaN;
  if (!(limit >= 1 && limit <= MAX_JOB_PAGE)) invalid('limit', `must be an integer from 1 to ${MAX_JOB_PAGE}`);
  const after = text('after');
  return {
    tenant,
    statuses: statuses as JobStatus[] | null,
    model,
    createdAfter: timestamp('created_after', text('created_after')),
    createdBefore: timestamp('created_before', text('created_before')),
    limit,
    after: after === null ? null : await cursorOf(store, tenant, after),
  };
}

function timestamp(name: string, value: string | null): number | null {
  if (value === null) return null;
  const ms = Date.parse(value);
  if (!RFC3339.test(value) || !Number.isFinite(ms)) invalid(name, 'must be an RFC 3339 timestamp, like 2026-01-31T12:00:00Z');
  return ms;
}

/** A cursor (`<ms>.<id>`, base64url) or the id of a job in the tenant's list. */
async function cursorOf(store: JobStore, tenant: string, after: string): Promise<JobListCursor> {
  if (JOB_ID_PATTERN.test(after)) {
    const created = await store.list.createdOf(tenant, after);
    if (created === null) invalid('after', 'names no job of this list (it may be gone): use the page’s `next`');
    return { created, id: after };
  }
  const match = CURSOR.exec(Buffer.from(after, 'base64url').toString('latin1'));
  const id = match?.[2] ?? '';
  if (!match || !JOB_ID_PATTERN.test(id) || encodeCursor({ created: Number(match[1]), id }) !== after) {
    invalid('after', 'is not a cursor of this list: give the `next` of a page, or the last job id of one');
  }
  return { created: Number(match[1]), id };
}

export function encodeCursor(cursor: JobListCursor): string {
  return Buffer.from(`${cursor.created}.${cursor.id}`, 'latin1').toString('base64url');
}

function nextUrl(raw: Record<string, unknown>, cursor: JobListCursor): string {
  const params = new URLSearchParams();
  for (const name of QUERY_FIELDS) {
    const value = raw[name];
    if (name !== 'after' && typeof value === 'string') params.set(name, value);
  }
  params.set('after', encodeCursor(cursor));
  return `${BASE_PATH}/jobs?${params.toString()}`;
}

function invalid(field: string, message: string): never {
  throw new ProblemError('OB_ERR_INVALID_REQUEST', `query parameter '${field}' ${message}`, { errors: [{ field, message }] });
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of this route (api/src/openapi.ts merges it).

export function jobSchemas(): Record<string, Schema> {
  return {
    JobList: {
      type: 'object',
      required: ['data', 'has_more', 'first_id', 'last_id', 'next'],
      properties: {
        data: { type: 'array', items: ref('JobView'), description: 'Jobs, newest first (as GET /v1/batch-result/{id}, without results).' },
        has_more: {
          type: 'boolean',
          description: 'More jobs may follow: fetch `next`. A sparse filter may answer short, even empty, pages with has_more true.',
        },
        first_id: { type: ['string', 'null'], format: 'uuid' },
        last_id: { type: ['string', 'null'], format: 'uuid' },
        next: { type: ['string', 'null'], description: 'URL of the next page (same filters); null on the last.' },
      },
    },
  };
}

export function jobPaths(): Paths {
  const parameter = (name: string, description: string, schema: Schema): Schema => ({
    name,
    in: 'query',
    required: false,
    description,
    schema,
  });
  const time = { type: 'string', format: 'date-time' };
  return {
    '/v1/jobs': {
      get: {
        tags: ['batches'],
        operationId: 'listJobs',
        summary: 'The caller’s tenant’s jobs, newest first, filtered and paged by cursor.',
        parameters: [
          parameter('status', `One or a comma list of: ${JOB_STATUSES.join(', ')}.`, { type: 'string' }),
          parameter('model', 'Only jobs of this model.', { type: 'string', minLength: 1, maxLength: 64 }),
          parameter('created_after', 'Only jobs created after this time (RFC 3339).', time),
          parameter('created_before', 'Only jobs created before this time (RFC 3339).', time),
          parameter('limit', 'Most jobs in the page.', { type: 'integer', minimum: 1, maximum: MAX_JOB_PAGE, default: DEFAULT_JOB_PAGE }),
          parameter('after', 'Continue after this place: the `next` cursor of a page, or the last job id of one.', { type: 'string' }),
        ],
        responses: {
          '200': { description: 'One page of jobs.', ...json(ref('JobList')) },
          ...problemResponses([...GUARD_CODES, 'OB_ERR_INVALID_REQUEST']),
        },
      },
    },
  };
}
