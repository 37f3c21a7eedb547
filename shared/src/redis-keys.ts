import { createHash, randomUUID } from 'node:crypto';

/**
 * The Redis key layout. A job's keys carry the hash tag of its id's first two hex digits, so a
 * job's Lua scripts touch one slot on Redis Cluster, jobs spread over 256 tags, and the few keys
 * that must change atomically with a job (its idempotency claim, its outbox entry) can live in
 * the same slot:
 *
 *   <prefix>:job:{ab}cdef01-…        hash   the job record (see job-store.ts); the key is the id with
 *                                           its first two digits braced
 *   <prefix>:job:{ab}cdef01-…:in:<n>  string chunk n's encoded input rows (deleted once it has run)
 *   <prefix>:job:{ab}cdef01-…:out:<n> string chunk n's results, one JSON object a line (written once)
 *   <prefix>:idem:{ab}:<sha256>       string `<job key> <jobId> <body hash>`: an Idempotency-Key's
 *                                           claim; its job's id starts with the same two digits
 *   <prefix>:outbox:{ab}              zset   committed jobs not yet known to be queued (score: commit
 *                                           time in ms); workers re-queue entries left behind
 *   <prefix>:events:finished          pub/sub channel: the id of each job that finished
 *   <prefix>:tenant:{<t>}:active      zset   a tenant's jobs that may be unfinished (pruned lazily)
 *   <prefix>:tenant:{<t>}:jobs        zset   a tenant's jobs by creation time (ms): GET /v1/jobs (job-list.ts)
 *   <prefix>:tenant:{<t>}:jobs:expiring  zset the finished ones of them by when their keys expire (ms)
 *   <prefix>:ratelimit:<key id>:<minute>  string tokens of a key's minute leased by API processes (rate-limit.ts)
 *   <prefix>:reconciler               string lock of the worker running the recovery sweep
 *   <prefix>:rollout:{<model>}        string the model's rollout (JSON; see rollouts/rollout.ts)
 *   <prefix>:rollout:{<model>}:audit  stream every change of it: who, when, from, to, why
 *   <prefix>:rollout:{<model>}:stats:<revision>  hash   canary and shadow counters of one revision
 *   <prefix>:events:rollouts          pub/sub channel: the name of each model whose rollout changed
 *   <prefix>:cache:{<model>}:<version>:<digest>  string a row's result values (prediction-cache.ts)
 *   <prefix>:drift:{<model>}:<version>:<digest>:m:<minute>  hash  production counts of a version in
 *                                           one minute, binned by the baseline of that digest (`h:<hour>`:
 *                                           the same per hour); they expire DRIFT_RETENTION_HOURS after
 *                                           the bucket ends (drift/drift-buckets.ts)
 *   <prefix>:quality:job:{ab}cdef01-…  string what labels of the job need once its record is gone
 *                                           (tenant, model, version, arm, labels; quality/prediction-log.ts)
 *   <prefix>:quality:{<model>}:pred:<job id>:<n>  string chunk n's predictions, kept LABEL_RETENTION_DAYS
 *   <prefix>:quality:{<model>}:pred:<job id>:<n>:shadow  string the same chunk's predictions by the shadow version
 *   <prefix>:quality:{<model>}:label:<job id>:<n> string the labels given to chunk n's rows
 *   <prefix>:quality:{<model>}:job:<job id>      hash   the job's quality counters (quality/quality-counters.ts)
 *   <prefix>:quality:{<model>}:<version>:<arm>:h:<hour>  hash  quality counters of the predictions made in one
 *                                           hour (`d:<day>`: one UTC day); they expire LABEL_RETENTION_DAYS after
 *                                           the bucket ends
 *   <prefix>:quality:{<model>}:series           hash   `<version>:<arm>` → when it last predicted (ms)
 *   <prefix>:quality:{<t>}:ids:<day>            hash   a tenant's row ids → `<job id> <chunk> <row>`, by day of prediction
 *   <prefix>:eval:{<model>}:<id>              hash   an evaluation (evaluations/evaluation-store.ts): `record` (JSON, written
 *                                           once), `outcome` (JSON: its report or why it failed, written once, HSETNX)
 *   <prefix>:eval:{<model>}:<id>:truths       string its rows' truths (a uint16 class index or a float64 value a row),
 *                                           deleted once the outcome is written
 *   <prefix>:eval:{<model>}:v:<version>       zset   the evaluations of a candidate version by creation time (ms)
 *                                           Every key of a model's evaluations shares its slot; all expire
 *                                           EVALUATION_RETENTION_DAYS after the evaluation started.
 *
 * A job's keys have no TTL while it is queued or running; when it finishes they all get
 * RESULT_TTL_SECONDS. Staged inputs of an upload not yet committed live STAGING_TTL_SECONDS,
 * renewed while the upload is still arriving.
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  job(id: string): string {
    return `${this.prefix}:job:{${id.slice(0, TAG_LENGTH)}}${id.slice(TAG_LENGTH)}`;
  }

  input(id: string, chunk: number): string {
    return `${this.job(id)}:in:${chunk}`;
  }

  output(id: string, chunk: number): string {
    return `${this.job(id)}:out:${chunk}`;
  }

  tenantActive(tenant: string): string {
    return `${this.prefix}:tenant:{${tenant}}:active`;
  }

  /** A tenant's job list: job ids scored by creation time (ms). */
  tenantJobs(tenant: string): string {
    return `${this.prefix}:tenant:{${tenant}}:jobs`;
  }

  /** The finished jobs of a tenant's list, scored by when their keys expire (ms); the finish scripts name it `<list>:expiring`. */
  tenantJobsExpiring(tenant: string): string {
    return `${this.tenantJobs(tenant)}:expiring`;
  }

  /** An uploaded file's description (POST /v1/files): a hash, written once its last part is. */
  file(id: string): string {
    return `${this.prefix}:file:{${id}}`;
  }

  /** Part `n` of an uploaded file's bytes, in the file's slot. */
  filePart(id: string, n: number): string {
    return `${this.file(id)}:part:${n}`;
  }

  /** A tenant's uploaded files: file ids scored by upload time (ms). */
  tenantFiles(tenant: string): string {
    return `${this.prefix}:tenant:{${tenant}}:files`;
  }

  /** A batch of the Batch API (POST /v1/batches): what it was asked for and which job runs it. */
  batch(id: string): string {
    return `${this.prefix}:batch:{${id}}`;
  }

  /** The requests of a batch refused before its job (a body its endpoint does not take), one JSON array per line. */
  batchRefused(id: string): string {
    return `${this.batch(id)}:refused`;
  }

  /** What an endpoint keeps of each request of a batch's job to answer it (one JSON array a row, in row order). */
  batchNotes(id: string): string {
    return `${this.batch(id)}:notes`;
  }

  /** Held while one request writes a batch's description (two with one Idempotency-Key write it once). */
  batchWriter(id: string): string {
    return `${this.batch(id)}:writer`;
  }

  /** A tenant's batches: batch ids scored by creation time (ms). */
  tenantBatches(tenant: string): string {
    return `${this.prefix}:tenant:{${tenant}}:batches`;
  }

  /** The claim of an Idempotency-Key: in the slot of the job ids it may name (see newJobId). */
  idempotency(claim: IdempotencyClaimName): string {
    return `${this.prefix}:idem:{${claim.tag}}:${claim.digest}`;
  }

  /** The outbox of the jobs whose ids start with `tag`. */
  outbox(tag: string): string {
    return `${this.prefix}:outbox:{${tag}}`;
  }

  /** Every outbox (one per tag), for the recovery sweep. */
  outboxes(): string[] {
    return ALL_TAGS.map((tag) => this.outbox(tag));
  }

  rateLimitPrefix(): string {
    return `${this.prefix}:ratelimit`;
  }

  finishedChannel(): string {
    return `${this.prefix}:events:finished`;
  }

  reconcilerLock(): string {
    return `${this.prefix}:reconciler`;
  }

  rollout(model: string): string {
    return `${this.prefix}:rollout:{${model}}`;
  }

  rolloutAudit(model: string): string {
    return `${this.rollout(model)}:audit`;
  }

  rolloutStats(model: string, revision: number): string {
    return `${this.rollout(model)}:stats:${revision}`;
  }

  predictionCache(model: string, version: string, digest: string): string {
    return `${this.prefix}:cache:{${model}}:${version}:${digest}`;
  }

  rolloutChannel(): string {
    return `${this.prefix}:events:rollouts`;
  }

  /**
   * A job's pointer to its kept predictions: in the job's slot (its id's tag), outside the
   * `job:` names (it outlives the record, and whoever walks a job's keys finds only the job's).
   */
  jobQuality(id: string): string {
    return `${this.prefix}:quality:job:{${id.slice(0, TAG_LENGTH)}}${id.slice(TAG_LENGTH)}`;
  }

  /** Kept predictions and quality counters of a model: every key shares the model's slot. */
  qualityPredictions(model: string, jobId: string, chunk: number): string {
    return `${this.prefix}:quality:{${model}}:pred:${jobId}:${chunk}`;
  }

  /** A shadow version's predictions of the same chunk (a sample of a default-served job's chunks). */
  qualityShadowPredictions(model: string, jobId: string, chunk: number): string {
    return `${this.qualityPredictions(model, jobId, chunk)}:shadow`;
  }

  qualityLabels(model: string, jobId: string, chunk: number): string {
    return `${this.prefix}:quality:{${model}}:label:${jobId}:${chunk}`;
  }

  qualityJob(model: string, jobId: string): string {
    return `${this.prefix}:quality:{${model}}:job:${jobId}`;
  }

  qualityBucket(model: string, version: string, arm: string, unit: 'h' | 'd', index: number): string {
    return `${this.prefix}:quality:{${model}}:${version}:${arm}:${unit}:${index}`;
  }

  qualitySeries(model: string): string {
    return `${this.prefix}:quality:{${model}}:series`;
  }

  /** A tenant's row ids of predictions made on one UTC day (POST /v1/labels finds rows by id here). */
  qualityIds(tenant: string, day: number): string {
    return `${this.prefix}:quality:{${tenant}}:ids:${day}`;
  }

  /** An evaluation of a model version (hash: record, outcome); every key of a model's evaluations shares its slot. */
  evaluation(model: string, id: string): string {
    return `${this.prefix}:eval:{${model}}:${id}`;
  }

  evaluationTruths(model: string, id: string): string {
    return `${this.evaluation(model, id)}:truths`;
  }

  /** The evaluations of a candidate version, by creation time (ms). */
  evaluationsOf(model: string, version: string): string {
    return `${this.prefix}:eval:{${model}}:v:${version}`;
  }

  /** One time bucket of a version's drift counts; every bucket of a model shares its slot. */
  driftBucket(model: string, version: string, digest: string, unit: 'm' | 'h', index: number): string {
    return `${this.prefix}:drift:{${model}}:${version}:${digest}:${unit}:${index}`;
  }
}

/** Hex digits of a job id that form its hash tag: 256 tags. */
const TAG_LENGTH = 2;
const ALL_TAGS = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(TAG_LENGTH, '0'));

/** The tag (slot group) of a job id. */
export function jobTag(id: string): string {
  return id.slice(0, TAG_LENGTH);
}

/** Job ids are random UUIDs (122 random bits): unguessable, and safe inside keys and URLs. */
export const JOB_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Where an Idempotency-Key's claim lives: its tag and digest, both from tenant and key. */
export interface IdempotencyClaimName {
  tag: string;
  digest: string;
}

/** The claim name of a tenant's Idempotency-Key (given as its SHA-256). */
export function idempotencyClaimName(tenant: string, keyHash: string): IdempotencyClaimName {
  const digest = createHash('sha256').update(`${tenant}\n${keyHash}`).digest('hex');
  return { tag: digest.slice(0, TAG_LENGTH), digest };
}

/**
 * A new job id: random, except that a job submitted under an Idempotency-Key starts with its
 * claim's tag, so the claim and the job commit in one atomic script (one slot on a cluster).
 * Ids are never reused: a job submitted again under the same key after its first job is gone
 * gets a new id.
 */
export function newJobId(claim?: IdempotencyClaimName): string {
  const id = randomUUID();
  return claim ? `${claim.tag}${id.slice(TAG_LENGTH)}` : id;
}
