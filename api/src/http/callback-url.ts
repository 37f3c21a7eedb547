import { ProblemError } from '@onnx-batch/shared';

/** Syntax check of a callback URL at submit time: absolute http(s), no credentials. */
export function checkCallbackSyntax(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('must be an absolute http(s) URL');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw invalid('must use http or https');
  if (parsed.username || parsed.password) throw invalid('must not carry credentials');
  return parsed.toString();
}

function invalid(message: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_REQUEST', `field 'callbackUrl' ${message}`, { errors: [{ field: 'callbackUrl', message }] });
}
