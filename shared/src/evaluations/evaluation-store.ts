import type { Evaluation, EvaluationReport } from '@onnx-batch/contracts';
import type { RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';
import type { QualityKind } from '../quality/quality-counters';

/** An evaluation as written when it starts: everything but what its jobs decide. */
export type EvaluationRecord = Omit<Evaluation, 'status' | 'progress' | 'report' | 'error' | 'finishedAt'> & {
  kind: QualityKind;
  /** The classifier's labels, in the order the truths index them. */
  labels: string[];
};

/** What an evaluation came to, written once (the first writer wins; any later one computed the same). */
export type EvaluationOutcome =
  { status: 'completed'; finishedAt: string; report: EvaluationReport } | { status: 'failed'; finishedAt: string; error: string };

/** Most evaluations listed (and kept in the index) per candidate version. */
export const MAX_EVALUATIONS_PER_VERSION = 100;

/**
 * Evaluations in Redis (redis-keys.ts, `eval:`): a hash per evaluation with its record and, once
 * known, its outcome; its truths beside it until the outcome is written; an index per candidate
 * version. Every key of a model shares the model's slot, so each write is one MULTI.
 */
export class EvaluationStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly retentionSeconds: number,
  ) {}

  async create(record: EvaluationRecord, truths: Buffer): Promise<void> {
    const key = this.keys.evaluation(record.model, record.id);
    const index = this.keys.evaluationsOf(record.model, record.version);
    await this.redis
      .multi()
      .hset(key, 'record', JSON.stringify(record))
      .expire(key, this.retentionSeconds)
      .set(this.keys.evaluationTruths(record.model, record.id), truths, 'EX', this.retentionSeconds)
      .zadd(index, Date.parse(record.createdAt), record.id)
      .zremrangebyrank(index, 0, -(MAX_EVALUATIONS_PER_VERSION + 1))
      .expire(index, this.retentionSeconds)
      .exec();
  }

  /** The record and outcome (null while its jobs run) of an evaluation, or null when there is none (unknown, expired). */
  async get(model: string, id: string): Promise<{ record: EvaluationRecord; outcome: EvaluationOutcome | null } | null> {
    const hash = await this.redis.hgetall(this.keys.evaluation(model, id));
    if (!hash.record) return null;
    return {
      record: JSON.parse(hash.record) as EvaluationRecord,
      outcome: hash.outcome ? (JSON.parse(hash.outcome) as EvaluationOutcome) : null,
    };
  }

  async truths(model: string, id: string): Promise<Buffer | null> {
    return this.redis.getBuffer(this.keys.evaluationTruths(model, id));
  }

  /** Writes the outcome unless one was written first, then drops the truths; answers the outcome that stands. */
  async finish(model: string, id: string, outcome: EvaluationOutcome): Promise<EvaluationOutcome> {
    const key = this.keys.evaluation(model, id);
    const replies = await this.redis
      .multi()
      .hsetnx(key, 'outcome', JSON.stringify(outcome))
      .hget(key, 'outcome')
      .del(this.keys.evaluationTruths(model, id))
      .exec();
    const stored = replies?.[1]?.[1];
    return typeof stored === 'string' ? (JSON.parse(stored) as EvaluationOutcome) : outcome;
  }

  /** Ids of a candidate version's evaluations, newest first. */
  async ids(model: string, version: string, limit = MAX_EVALUATIONS_PER_VERSION): Promise<string[]> {
    return this.redis.zrevrange(this.keys.evaluationsOf(model, version), 0, limit - 1);
  }

  /** Forgets an id that names no evaluation any more (expired). */
  async unlist(model: string, version: string, id: string): Promise<void> {
    await this.redis.zrem(this.keys.evaluationsOf(model, version), id);
  }
}
