/**
 * What goes wrong below the HTTP layer, as error types of their own: the model repository, the
 * job store, the codec and the webhook guard throw these; only the API maps them to
 * problem+json (api/src/http/domain-problems.ts), so a worker or a scheduler never reasons in
 * HTTP statuses.
 */

/** No model of that name in the repository. */
export class ModelNotFoundError extends Error {
  override name = 'ModelNotFoundError';

  constructor(
    readonly model: string,
    readonly known: readonly string[],
  ) {
    super(`no model named '${truncate(model)}' (models: ${known.join(', ')})`);
  }
}

/** The model has no such version. */
export class VersionNotFoundError extends Error {
  override name = 'VersionNotFoundError';

  constructor(
    readonly model: string,
    readonly version: string,
    readonly known: readonly string[],
  ) {
    super(`model '${model}' has no version '${truncate(version)}' (versions: ${known.join(', ')})`);
  }
}

/** A stored value that cannot be opened (wrong ENCRYPTION_KEY, encrypted or not when it should be, altered). */
export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

/**
 * Why a callback URL was refused: `invalid` (syntax, scheme), `forbidden` (a non-public
 * address), `unresolved` (the host did not resolve; may pass later).
 */
export class CallbackUrlError extends Error {
  override name = 'CallbackUrlError';

  constructor(
    readonly kind: 'invalid' | 'forbidden' | 'unresolved',
    /** What is wrong, without the field name (`must use http or https`). */
    readonly reason: string,
  ) {
    super(`field 'callbackUrl' ${reason}`);
  }
}

/**
 * Redis has no room for what a client asked to store: it is above REDIS_MEMORY_HIGH_WATERMARK
 * (new jobs are refused so accepted ones can finish), or it refused a write at maxmemory.
 */
export class StorageFullError extends Error {
  override name = 'StorageFullError';

  constructor(
    message: string,
    /** How long the client should wait before trying again. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

/** A Redis server written to may evict keys (its maxmemory-policy is not noeviction): new jobs are refused. */
export class RedisEvictingError extends Error {
  override name = 'RedisEvictingError';
}

function truncate(value: string): string {
  return value.length > 64 ? `${value.slice(0, 64)}…` : value;
}
