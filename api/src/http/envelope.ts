import type { ValidateFunction } from 'ajv';
import { ProblemError } from '@onnx-batch/contracts';

/** Checks a request envelope against its schema; a failure is a 400 naming the field. */
export function checkEnvelope<T>(validate: ValidateFunction, body: unknown): T {
  if (validate(body)) return body as T;
  const error = validate.errors?.[0];
  const params = (error?.params ?? {}) as { missingProperty?: string; additionalProperty?: string };
  const field =
    error?.keyword === 'required'
      ? String(params.missingProperty)
      : error?.keyword === 'additionalProperties'
        ? String(params.additionalProperty)
        : error?.instancePath.replace(/^\//, '').replace(/\//g, '.') || '(body)';
  const message = error?.keyword === 'additionalProperties' ? 'is not a known field' : (error?.message ?? 'is invalid');
  throw new ProblemError('OB_ERR_INVALID_REQUEST', `field '${field}' ${message}`, { errors: [{ field, message }] });
}
