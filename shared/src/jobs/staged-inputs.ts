import { sealAtRest, type AtRestCipher } from '../crypto/at-rest';
import type { RedisClient } from '../redis';
import type { RedisKeys } from '../redis-keys';

/** The place of a chunk's input, authenticated with it when encrypted (see crypto/at-rest.ts). */
export const inputPlace = (id: string, chunk: number): string => `${id}:in:${chunk}`;

/**
 * Chunk inputs of an upload still arriving: each written with STAGING_TTL_SECONDS, renewed while
 * the upload lasts; the commit script makes them permanent (or finds one gone and refuses).
 */
export class StagedInputs {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly cipher: AtRestCipher | null,
  ) {}

  /** Writes one chunk's encoded input; it lives `ttlSeconds` unless the job commits (or is kept alive). */
  stage(id: string, chunk: number, input: Buffer, ttlSeconds: number): Promise<unknown> {
    return this.redis.set(this.keys.input(id, chunk), sealAtRest(this.cipher, input, inputPlace(id, chunk)), 'EX', ttlSeconds);
  }

  /** Gives staged inputs [0, chunks) another `ttlSeconds`: an upload still arriving keeps what it staged. */
  async keepAlive(id: string, chunks: number, ttlSeconds: number): Promise<void> {
    for (let from = 0; from < chunks; from += 1000) {
      const pipeline = this.redis.pipeline();
      for (let chunk = from; chunk < Math.min(chunks, from + 1000); chunk++) pipeline.expire(this.keys.input(id, chunk), ttlSeconds);
      await pipeline.exec();
    }
  }
}
