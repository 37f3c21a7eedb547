import type { Config } from './config';
import type { RedisClient } from './redis';
import type { RedisKeys } from './redis-keys';

/**
 * Results of rows seen before, per model version, in Redis: key = model, version and the row's
 * digest (codec/row-digest.ts: its encoded values), value = the row's result values (float32,
 * as a result chunk stores them). Workers fill it from small chunks of the models it is on for;
 * the synchronous facade answers a request whose every row is in it without queueing a job.
 */
export class PredictionCache {
  private readonly models: Set<string> | 'all';

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    config: Pick<Config, 'PREDICTION_CACHE_MODELS' | 'PREDICTION_CACHE_TTL_SECONDS' | 'SYNC_MAX_ROWS'>,
  ) {
    const list = config.PREDICTION_CACHE_MODELS.split(',')
      .map((m) => m.trim())
      .filter(Boolean);
    this.models = list.includes('*') ? 'all' : new Set(list);
    this.ttlSeconds = config.PREDICTION_CACHE_TTL_SECONDS;
    this.maxRows = config.SYNC_MAX_ROWS;
  }

  private readonly ttlSeconds: number;
  /** Chunks of at most this many rows fill the cache (the synchronous facade's size): bulk batches would flood Redis. */
  readonly maxRows: number;

  enabledFor(model: string): boolean {
    return this.models === 'all' || this.models.has(model);
  }

  /** The cached values of each digest (null where it is not cached), in one MGET. */
  async get(model: string, version: string, digests: readonly string[]): Promise<(Float32Array | null)[]> {
    if (digests.length === 0) return [];
    const values = await this.redis.mgetBuffer(...digests.map((d) => this.keys.predictionCache(model, version, d)));
    return values.map((value) =>
      value === null || value.length % 4 !== 0
        ? null
        : new Float32Array(value.buffer.slice(value.byteOffset, value.byteOffset + value.length)),
    );
  }

  /** Stores rows' values (rows × width; rows with NaN — failed — are left out), with the TTL, in one pipeline. */
  async set(model: string, version: string, digests: readonly string[], values: Float32Array, width: number): Promise<void> {
    const pipeline = this.redis.pipeline();
    digests.forEach((digest, row) => {
      const own = values.subarray(row * width, (row + 1) * width);
      if (own.some((v) => Number.isNaN(v))) return;
      pipeline.set(
        this.keys.predictionCache(model, version, digest),
        Buffer.from(own.buffer, own.byteOffset, own.byteLength),
        'EX',
        this.ttlSeconds,
      );
    });
    if (pipeline.length > 0) await pipeline.exec();
  }
}
