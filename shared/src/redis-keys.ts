/**
 * The Redis key layout. Every key of one job shares the hash tag `{<jobId>}` so that the job's
 * Lua scripts touch a single slot on Redis Cluster. All of them carry the job's TTL.
 *
 *   <prefix>:job:{<id>}            hash   the job record (see job-store.ts)
 *   <prefix>:job:{<id>}:in:<n>     string chunk n's encoded input rows (deleted once it has run)
 *   <prefix>:job:{<id>}:out:<n>    string chunk n's results, one JSON object a line (written once)
 *   <prefix>:events:finished       pub/sub channel: the id of each job that finished
 *   <prefix>:tenant:{<t>}:active   zset   a tenant's jobs that may be unfinished (pruned lazily)
 *   <prefix>:idem:{<t>}:<sha256>   string `<jobId> <body sha256>` of an Idempotency-Key
 *   <prefix>:ratelimit:…           rate-limiter-flexible's counters, per API key
 */
export class RedisKeys {
  constructor(readonly prefix: string) {}

  job(id: string): string {
    return `${this.prefix}:job:{${id}}`;
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

  /** The Idempotency-Key is hashed: it is client-chosen text of any shape. */
  idempotency(tenant: string, keyHash: string): string {
    return `${this.prefix}:idem:{${tenant}}:${keyHash}`;
  }

  rateLimitPrefix(): string {
    return `${this.prefix}:ratelimit`;
  }

  finishedChannel(): string {
    return `${this.prefix}:events:finished`;
  }
}

/** Job ids are 128-bit random UUIDs: unguessable, and safe inside keys and URLs. */
export const JOB_ID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
