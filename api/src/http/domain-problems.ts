import { ProblemError } from '@onnx-batch/contracts';
import {
  CallbackUrlError,
  DecryptionError,
  isOutOfMemoryError,
  ModelNotFoundError,
  RedisEvictingError,
  RolloutError,
  RolloutPreconditionError,
  STORAGE_FULL_RETRY_AFTER_SECONDS,
  StorageFullError,
  VersionNotFoundError,
} from '@onnx-batch/shared';

/**
 * The problem+json answer of an error thrown below the HTTP layer (shared/src/domain-errors.ts),
 * or null when it is not one: the only place domain errors meet HTTP statuses.
 */
export function problemOfDomainError(error: unknown): ProblemError | null {
  if (error instanceof ModelNotFoundError) return new ProblemError('OB_ERR_MODEL_NOT_FOUND', error.message);
  if (error instanceof VersionNotFoundError) return new ProblemError('OB_ERR_VERSION_NOT_FOUND', error.message);
  if (error instanceof DecryptionError) return new ProblemError('OB_ERR_DECRYPTION_FAILED', error.message);
  if (error instanceof CallbackUrlError)
    return new ProblemError('OB_ERR_INVALID_REQUEST', error.message, { errors: [{ field: 'callbackUrl', message: error.reason }] });
  // A rollout change that names a field is a bad request; one the current rollout does not allow, a conflict.
  if (error instanceof RolloutError)
    return error.field
      ? new ProblemError('OB_ERR_INVALID_REQUEST', error.message, { errors: [{ field: error.field, message: error.message }] })
      : new ProblemError('OB_ERR_ROLLOUT_CONFLICT', error.message);
  if (error instanceof RolloutPreconditionError)
    return new ProblemError('OB_ERR_PRECONDITION_FAILED', error.message, { revision: error.revision });
  if (error instanceof StorageFullError)
    return new ProblemError('OB_ERR_STORAGE_FULL', error.message, { retryAfter: error.retryAfterSeconds });
  if (error instanceof RedisEvictingError) return new ProblemError('OB_ERR_REDIS_EVICTING', error.message, { retryAfter: 60 });
  // Redis refused a write at maxmemory, wherever it was met: what the request wrote is removed by the code that wrote it.
  if (isOutOfMemoryError(error))
    return new ProblemError(
      'OB_ERR_STORAGE_FULL',
      'Redis is full (maxmemory reached) and refused to store this request; nothing of it was kept: retry once jobs have ' +
        'finished or been deleted',
      { retryAfter: STORAGE_FULL_RETRY_AFTER_SECONDS },
    );
  return null;
}
