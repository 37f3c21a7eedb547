import { ProblemError } from '@onnx-batch/contracts';
import { CallbackUrlError, DecryptionError, ModelNotFoundError, RolloutError, VersionNotFoundError } from '@onnx-batch/shared';

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
  return null;
}
