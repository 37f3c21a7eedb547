import { type JobStatus, JOB_STATUSES, type Problem, type RouteArm } from '@onnx-batch/contracts';

/** The job record as stored in its hash. */
export interface JobRecord {
  id: string;
  tenant: string;
  model: string;
  version: string;
  /** How the version was chosen: named by the client (`pinned`), or by the model's rollout (`default`, `canary`). */
  route: RouteArm;
  /** The rollout revision that routed the job (0: none); canary and shadow statistics are kept per revision. */
  rolloutRevision: number;
  status: JobStatus;
  total: number;
  done: number;
  failed: number;
  chunks: number;
  chunksDone: number;
  chunkSize: number;
  priority: number;
  /** Where the job's status is POSTed when it finishes (checked against SSRF at submit). */
  callbackUrl: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: Problem | null;
  /** Input columns kept beside the predictions (`passthrough=` at submit), in the order named. */
  passthrough?: string[];
}

/** How a job's version was chosen, from its stored field (records written before rollouts say nothing: pinned). */
export function routeOf(value: string | undefined): RouteArm {
  return value === 'default' || value === 'canary' ? value : 'pinned';
}

export function serialiseRecord(record: JobRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(record)) {
    if (v === null || v === undefined) continue;
    out[k] = typeof v === 'object' ? JSON.stringify(v) : String(v);
  }
  return out;
}

export function deserialiseRecord(hash: Record<string, string>): JobRecord {
  const status = hash.status as JobStatus;
  return {
    id: hash.id ?? '',
    tenant: hash.tenant ?? '',
    model: hash.model ?? '',
    version: hash.version ?? '',
    route: routeOf(hash.route),
    rolloutRevision: Number(hash.rolloutRevision ?? 0),
    status: JOB_STATUSES.includes(status) ? status : 'queued',
    total: Number(hash.total ?? 0),
    done: Number(hash.done ?? 0),
    failed: Number(hash.failed ?? 0),
    chunks: Number(hash.chunks ?? 0),
    chunksDone: Number(hash.chunksDone ?? 0),
    chunkSize: Number(hash.chunkSize ?? 0),
    priority: Number(hash.priority ?? 0),
    callbackUrl: hash.callbackUrl ?? null,
    createdAt: hash.createdAt ?? '',
    startedAt: hash.startedAt ?? null,
    finishedAt: hash.finishedAt ?? null,
    error: hash.error ? (JSON.parse(hash.error) as Problem) : null,
    ...(hash.passthrough ? { passthrough: JSON.parse(hash.passthrough) as string[] } : {}),
  };
}
