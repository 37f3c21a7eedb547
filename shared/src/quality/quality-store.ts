import { ProblemError, type LabelOutcome } from '@onnx-batch/contracts';
import type { RowId } from '../codec/chunk-codec';
import type { Config } from '../config';
import { APPLY_LABELS } from '../lua/apply-labels';
import { RECORD_PREDICTIONS } from '../lua/record-predictions';
import type { RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';
import { labelIncrements, predictionIncrements, sumCounters, type Increments, type QualityKind } from './quality-counters';
import {
  qualityBucketExpiry,
  qualityBucketIndex,
  qualityBucketStart,
  qualityBucketsBetween,
  decodeKeptPredictions,
  decodeLabel,
  encodeKeptPredictions,
  encodeLabel,
  labelWidth,
  type JobQualityPointer,
  type KeptPredictions,
  type QualityArm,
  type QualityUnit,
} from './prediction-log';

type ScriptedRedis = RedisClient & {
  recordPredictions(...args: (string | number | Buffer)[]): Promise<number>;
  applyLabels(...args: (string | number | Buffer)[]): Promise<number>;
};

export interface QualityStoreOptions {
  /** LABEL_RETENTION_DAYS × 86 400. */
  retentionSeconds: number;
  /** LABEL_ID_INDEX: index row ids per tenant for POST /v1/labels. */
  indexIds: boolean;
  now?: () => number;
}

/** One chunk's predictions, as a worker records them. */
export interface ChunkPredictions {
  pointer: JobQualityPointer;
  chunk: number;
  rows: number;
  /** rows × width float32 as results store them (NaN: a failed row). */
  values: Float32Array;
  width: number;
  ids: (RowId | null)[] | null;
}

/** A label to apply: a row of the job (its index in the job) and its truth (class index or value). */
export interface ResolvedLabel {
  row: number;
  truth: number;
  /** Where the client gave it (line or position), for problems. */
  line: number;
}

export type { LabelOutcome } from '@onnx-batch/contracts';

/** Contended label writes to one chunk before a request gives up. */
const APPLY_ATTEMPTS = 8;
/** Most problems listed in one answer. */
const MAX_LISTED = 20;

/**
 * The prediction log and the quality counters (docs/models-in-production.md#quality): workers keep
 * each chunk's predictions and count them; labels are joined to them and counted. Keys of a model
 * share its slot (like drift); a job's pointer is in the job's slot, the id index in the tenant's.
 */
export class QualityStore {
  private readonly redis: ScriptedRedis;
  private readonly now: () => number;

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly options: QualityStoreOptions,
  ) {
    redis.defineCommand('recordPredictions', { numberOfKeys: 5, lua: RECORD_PREDICTIONS });
    redis.defineCommand('applyLabels', { numberOfKeys: 6, lua: APPLY_LABELS });
    this.redis = redis as ScriptedRedis;
    this.now = options.now ?? Date.now;
  }

  get retentionSeconds(): number {
    return this.options.retentionSeconds;
  }

  // -------------------------------------------------------------------------------------------
  // Workers: keep and count a chunk's predictions.

  /** Keeps a chunk's predictions and counts them (once: a re-run adds nothing), with the job's pointer and its rows' ids. */
  async recordChunk(chunk: ChunkPredictions): Promise<void> {
    if (this.options.retentionSeconds === 0) return; // LABEL_RETENTION_DAYS=0: nothing is kept
    const { pointer } = chunk;
    const at = this.now();
    const expiresAt = Math.floor(at / 1000) + this.options.retentionSeconds;
    const kept: KeptPredictions = { at, rows: chunk.rows, width: chunk.width, ids: chunk.ids, values: chunk.values };
    const increments = predictionIncrements(pointer.kind, chunk.values, chunk.rows, chunk.width);
    const hour = qualityBucketIndex('h', at);
    const day = qualityBucketIndex('d', at);
    const writes: Promise<unknown>[] = [
      this.redis.recordPredictions(
        this.keys.qualityPredictions(pointer.model, pointer.jobId, chunk.chunk),
        this.keys.qualityJob(pointer.model, pointer.jobId),
        this.keys.qualityBucket(pointer.model, pointer.version, pointer.arm, 'h', hour),
        this.keys.qualityBucket(pointer.model, pointer.version, pointer.arm, 'd', day),
        this.keys.qualitySeries(pointer.model),
        encodeKeptPredictions(kept),
        expiresAt,
        qualityBucketExpiry('h', hour, this.options.retentionSeconds),
        qualityBucketExpiry('d', day, this.options.retentionSeconds),
        `${pointer.version}:${pointer.arm}`,
        at,
        1,
        ...flatten(increments),
      ),
      this.redis.set(this.keys.jobQuality(pointer.jobId), JSON.stringify(pointer), 'EXAT', expiresAt),
    ];
    if (this.options.indexIds && chunk.ids) {
      const index = this.keys.qualityIds(pointer.tenant, day);
      const fields: string[] = [];
      chunk.ids.forEach((id, row) => {
        if (id !== null) fields.push(String(id), `${pointer.jobId} ${chunk.chunk} ${row}`);
      });
      if (fields.length > 0) {
        writes.push(
          this.redis
            .multi()
            .hset(index, ...fields)
            .expireat(index, qualityBucketExpiry('d', day, this.options.retentionSeconds))
            .exec(),
        );
      }
    }
    await Promise.all(writes);
  }

  /**
   * Keeps a shadow version's predictions of a chunk (re-run from a default-served job) and counts
   * them in the shadow version's own buckets (arm `shadow`), once; labels of the chunk's rows then
   * judge both versions on the same rows. Not in the job's counters: those judge the job's version.
   */
  async recordShadowChunk(
    chunk: Omit<ChunkPredictions, 'ids' | 'pointer'> & { model: string; jobId: string; version: string; kind: QualityKind },
  ): Promise<void> {
    if (this.options.retentionSeconds === 0) return;
    const at = this.now();
    const hour = qualityBucketIndex('h', at);
    const day = qualityBucketIndex('d', at);
    const kept: KeptPredictions = { at, version: chunk.version, rows: chunk.rows, width: chunk.width, ids: null, values: chunk.values };
    await this.redis.recordPredictions(
      this.keys.qualityShadowPredictions(chunk.model, chunk.jobId, chunk.chunk),
      this.keys.qualityJob(chunk.model, chunk.jobId),
      this.keys.qualityBucket(chunk.model, chunk.version, 'shadow', 'h', hour),
      this.keys.qualityBucket(chunk.model, chunk.version, 'shadow', 'd', day),
      this.keys.qualitySeries(chunk.model),
      encodeKeptPredictions(kept),
      Math.floor(at / 1000) + this.options.retentionSeconds,
      qualityBucketExpiry('h', hour, this.options.retentionSeconds),
      qualityBucketExpiry('d', day, this.options.retentionSeconds),
      `${chunk.version}:shadow`,
      at,
      0,
      ...flatten(predictionIncrements(chunk.kind, chunk.values, chunk.rows, chunk.width)),
    );
  }

  // -------------------------------------------------------------------------------------------
  // The API: find rows, apply labels.

  /** A job's pointer, or null when its predictions are not kept (never, no more, or another tenant's). */
  async pointer(jobId: string, tenant: string): Promise<JobQualityPointer | null> {
    const text = await this.redis.get(this.keys.jobQuality(jobId));
    if (!text) return null;
    const pointer = JSON.parse(text) as JobQualityPointer;
    return pointer.tenant === tenant ? pointer : null;
  }

  /** The kept predictions of a job's chunks (null: not kept, e.g. not run yet). */
  async predictions(pointer: JobQualityPointer, chunks: readonly number[]): Promise<Map<number, KeptPredictions | null>> {
    const out = new Map<number, KeptPredictions | null>();
    const pipeline = this.redis.pipeline();
    for (const chunk of chunks) pipeline.getBuffer(this.keys.qualityPredictions(pointer.model, pointer.jobId, chunk));
    const replies = (await pipeline.exec()) ?? [];
    chunks.forEach((chunk, i) => {
      const [error, value] = replies[i] ?? [null, null];
      if (error) throw error;
      out.set(chunk, value ? decodeKeptPredictions(value as Buffer) : null);
    });
    return out;
  }

  /**
   * The rows of a job its ids name (an id given to several rows names none: it is ambiguous).
   * Reads the ids of every chunk's kept predictions: O(rows of the job).
   */
  async rowsOfIds(pointer: JobQualityPointer): Promise<Map<string, number | 'ambiguous'>> {
    const all = Array.from({ length: pointer.chunks }, (_, i) => i);
    const rows = new Map<string, number | 'ambiguous'>();
    for (let from = 0; from < all.length; from += 64) {
      const kept = await this.predictions(pointer, all.slice(from, from + 64));
      for (const [chunk, predictions] of kept) {
        predictions?.ids?.forEach((id, row) => {
          if (id === null) return;
          const key = String(id);
          rows.set(key, rows.has(key) ? 'ambiguous' : chunk * pointer.chunkSize + row);
        });
      }
    }
    return rows;
  }

  /**
   * The newest prediction of a tenant for each id (POST /v1/labels), from the id index of the
   * retention's days, newest first: `[jobId, row of the job]`, or undefined when none is kept.
   */
  async findIds(tenant: string, ids: readonly string[]): Promise<(readonly [string, number, number] | undefined)[]> {
    const found: (readonly [string, number, number] | undefined)[] = ids.map(() => undefined);
    if (ids.length === 0) return found;
    const today = qualityBucketIndex('d', this.now());
    const days = Math.ceil(this.options.retentionSeconds / 86_400) + 1;
    const pipeline = this.redis.pipeline();
    for (let d = 0; d <= days; d++) pipeline.hmget(this.keys.qualityIds(tenant, today - d), ...ids);
    const replies = (await pipeline.exec()) ?? [];
    for (const [error, values] of replies) {
      if (error) throw error;
      (values as (string | null)[]).forEach((value, i) => {
        if (found[i] !== undefined || value === null) return;
        const [jobId, chunk, row] = value.split(' ');
        found[i] = [jobId ?? '', Number(chunk), Number(row)];
      });
    }
    return found;
  }

  /**
   * Applies labels to a job's rows, chunk by chunk, each atomically against what its rows held
   * (docs: the same label twice counts once; a changed label replaces the old one). Rows whose
   * chunk has no kept predictions are refused, naming them, before anything is written.
   */
  async applyLabels(pointer: JobQualityPointer, labels: readonly ResolvedLabel[]): Promise<LabelOutcome> {
    const byChunk = new Map<number, ResolvedLabel[]>();
    for (const label of labels) {
      const chunk = Math.floor(label.row / pointer.chunkSize);
      let list = byChunk.get(chunk);
      if (!list) byChunk.set(chunk, (list = []));
      list.push(label);
    }
    const chunks = [...byChunk.keys()].sort((a, b) => a - b);
    const kept = new Map<number, KeptPredictions | null>();
    for (let from = 0; from < chunks.length; from += 64)
      for (const [chunk, value] of await this.predictions(pointer, chunks.slice(from, from + 64))) kept.set(chunk, value);
    const missing = chunks.flatMap((chunk) => (kept.get(chunk) ? [] : (byChunk.get(chunk) ?? [])));
    if (missing.length > 0) {
      throw new ProblemError(
        'OB_ERR_INVALID_LABELS',
        `${missing.length} label(s) name rows without a kept prediction (not run yet, or past LABEL_RETENTION_DAYS); nothing was applied`,
        {
          errors: missing
            .slice(0, MAX_LISTED)
            .map((l) => ({ line: l.line, row: l.row, message: 'this row has no kept prediction (not run yet, or expired)' })),
        },
      );
    }
    const outcomes: LabelOutcome[] = [];
    for (const chunk of chunks)
      outcomes.push(await this.applyToChunk(pointer, chunk, kept.get(chunk) as KeptPredictions, byChunk.get(chunk) ?? []));
    return sumOutcomes(outcomes);
  }

  private async applyToChunk(
    pointer: JobQualityPointer,
    chunk: number,
    kept: KeptPredictions,
    labels: readonly ResolvedLabel[],
  ): Promise<LabelOutcome> {
    const { kind } = pointer;
    const width = labelWidth(kind);
    const labelKey = this.keys.qualityLabels(pointer.model, pointer.jobId, chunk);
    const hour = qualityBucketIndex('h', kept.at);
    const day = qualityBucketIndex('d', kept.at);
    // The chunk's shadow predictions, if a shadow re-ran it: each label judges that version too.
    const shadowBuffer = await this.redis.getBuffer(this.keys.qualityShadowPredictions(pointer.model, pointer.jobId, chunk));
    const shadow = shadowBuffer ? decodeKeptPredictions(shadowBuffer) : null;
    const shadowVersion = shadow?.version ?? pointer.version;
    const shadowHour = this.keys.qualityBucket(pointer.model, shadowVersion, 'shadow', 'h', qualityBucketIndex('h', shadow?.at ?? 0));
    const shadowDay = this.keys.qualityBucket(pointer.model, shadowVersion, 'shadow', 'd', qualityBucketIndex('d', shadow?.at ?? 0));
    for (let attempt = 0; attempt < APPLY_ATTEMPTS; attempt++) {
      const stored = await this.redis.getBuffer(labelKey);
      const outcome: LabelOutcome = { added: 0, replaced: 0, unchanged: 0, notPredicted: 0 };
      const increments: Increments = new Map();
      const shadowIncrements: Increments = new Map();
      const rows: number[] = [];
      const before: Buffer[] = [];
      const after: Buffer[] = [];
      for (const label of labels) {
        const row = label.row - chunk * pointer.chunkSize;
        if (Number.isNaN(kept.values[row * kept.width])) {
          outcome.notPredicted++;
          continue;
        }
        const old = decodeLabel(kind, stored, row);
        if (old !== null && sameTruth(kind, old, label.truth)) {
          outcome.unchanged++;
          continue;
        }
        if (old === null) outcome.added++;
        else outcome.replaced++;
        for (const [into, from] of [[increments, kept], ...(shadow ? [[shadowIncrements, shadow] as const] : [])] as const) {
          if (old !== null) labelIncrements(into, kind, from.values, row * from.width, from.width, old, -1);
          labelIncrements(into, kind, from.values, row * from.width, from.width, label.truth, 1);
        }
        rows.push(row);
        before.push(old === null ? Buffer.alloc(width) : encodeLabel(kind, old));
        after.push(encodeLabel(kind, label.truth));
      }
      if (rows.length === 0) return outcome;
      const rowBytes = Buffer.alloc(rows.length * 4);
      rows.forEach((row, i) => rowBytes.writeUInt32LE(row, i * 4));
      const main = flatten(increments);
      const applied = await this.redis.applyLabels(
        labelKey,
        this.keys.qualityJob(pointer.model, pointer.jobId),
        this.keys.qualityBucket(pointer.model, pointer.version, pointer.arm, 'h', hour),
        this.keys.qualityBucket(pointer.model, pointer.version, pointer.arm, 'd', day),
        shadowHour,
        shadowDay,
        width,
        Math.floor(kept.at / 1000) + this.options.retentionSeconds,
        qualityBucketExpiry('h', hour, this.options.retentionSeconds),
        qualityBucketExpiry('d', day, this.options.retentionSeconds),
        rowBytes,
        Buffer.concat(before),
        Buffer.concat(after),
        shadow ? qualityBucketExpiry('d', qualityBucketIndex('d', shadow.at), this.options.retentionSeconds) : 0,
        main.length / 2,
        ...main,
        ...(shadow ? flatten(shadowIncrements) : []),
      );
      if (applied === 1) return outcome;
    }
    throw new ProblemError('OB_ERR_LABELS_CONFLICT', 'these rows kept being labelled by other requests; send the labels again');
  }

  // -------------------------------------------------------------------------------------------
  // Reading.

  /** A job's summed counters (predictions and labels). */
  async jobCounters(pointer: JobQualityPointer): Promise<Map<string, number>> {
    return sumCounters([await this.redis.hgetall(this.keys.qualityJob(pointer.model, pointer.jobId))]);
  }

  /** The versions and arms of a model that predicted within the retention: `[version, arm, last prediction ms]`. */
  async series(model: string): Promise<{ version: string; arm: QualityArm; lastAt: number }[]> {
    const hash = await this.redis.hgetall(this.keys.qualitySeries(model));
    const horizon = this.now() - this.options.retentionSeconds * 1000;
    return Object.entries(hash)
      .map(([field, at]) => {
        const split = field.lastIndexOf(':');
        return { version: field.slice(0, split), arm: field.slice(split + 1) as QualityArm, lastAt: Number(at) };
      })
      .filter((s) => s.lastAt >= horizon)
      .sort((a, b) => Number(a.version) - Number(b.version) || a.arm.localeCompare(b.arm));
  }

  /** The counters of each bucket of `unit` overlapping [from, to), oldest first (one pipeline: one slot). */
  async buckets(
    model: string,
    version: string,
    arm: QualityArm,
    unit: QualityUnit,
    from: number,
    to: number,
  ): Promise<{ start: number; end: number; sums: Map<string, number> }[]> {
    const indexes = qualityBucketsBetween(unit, from, to);
    const pipeline = this.redis.pipeline();
    for (const index of indexes) pipeline.hgetall(this.keys.qualityBucket(model, version, arm, unit, index));
    const replies = (await pipeline.exec()) ?? [];
    return indexes.map((index, i) => {
      const [error, hash] = replies[i] ?? [null, {}];
      if (error) throw error;
      return {
        start: qualityBucketStart(unit, index),
        end: qualityBucketStart(unit, index + 1),
        sums: sumCounters([hash as Record<string, string>]),
      };
    });
  }

  /**
   * Removes what a deleted job kept for labels: its predictions, labels, counters and pointer
   * (its share of the hour and day counters stays: they are sums; its ids in the index then
   * name nothing and are skipped).
   */
  async forgetJob(jobId: string): Promise<void> {
    const text = await this.redis.get(this.keys.jobQuality(jobId));
    if (!text) return;
    const pointer = JSON.parse(text) as JobQualityPointer;
    const keys = [this.keys.qualityJob(pointer.model, jobId)];
    for (let chunk = 0; chunk < pointer.chunks; chunk++)
      keys.push(
        this.keys.qualityPredictions(pointer.model, jobId, chunk),
        this.keys.qualityShadowPredictions(pointer.model, jobId, chunk),
        this.keys.qualityLabels(pointer.model, jobId, chunk),
      );
    // All of a model's keys share one slot: batches of DEL, then the pointer (in the job's slot).
    for (let from = 0; from < keys.length; from += 512) await this.redis.del(...keys.slice(from, from + 512));
    await this.redis.del(this.keys.jobQuality(jobId));
  }
}

/** The store with LABEL_RETENTION_DAYS and LABEL_ID_INDEX. */
export function qualityStoreFromConfig(
  redis: RedisClient,
  keys: RedisKeys,
  config: Pick<Config, 'LABEL_RETENTION_DAYS' | 'LABEL_ID_INDEX'>,
): QualityStore {
  return new QualityStore(redis, keys, {
    retentionSeconds: config.LABEL_RETENTION_DAYS * 86_400,
    indexIds: config.LABEL_ID_INDEX === 'true',
  });
}

/** What several labels requests (or chunks of one) did, added up. */
export function sumOutcomes(outcomes: readonly LabelOutcome[]): LabelOutcome {
  const total: LabelOutcome = { added: 0, replaced: 0, unchanged: 0, notPredicted: 0 };
  for (const o of outcomes) {
    total.added += o.added;
    total.replaced += o.replaced;
    total.unchanged += o.unchanged;
    total.notPredicted += o.notPredicted;
  }
  return total;
}

function sameTruth(kind: QualityKind, a: number, b: number): boolean {
  // Regression labels are compared as stored (float64): 0.1 + 0.2 given twice is the same label.
  return kind === 'classification' ? a === b : a === b || (Number.isNaN(a) && Number.isNaN(b));
}

function flatten(increments: Increments): (string | number)[] {
  const out: (string | number)[] = [];
  for (const [field, value] of increments) if (value !== 0 && Number.isFinite(value)) out.push(field, value);
  return out;
}
