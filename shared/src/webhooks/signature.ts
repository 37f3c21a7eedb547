import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Signing of webhook deliveries. The signed text is `<timestamp>.<body>` (unix seconds, then
 * the exact bytes of the body); the header holds `v1=<hex HMAC-SHA256>`, one per secret when a
 * tenant has several (during a secret rotation), comma-separated.
 */
export const WEBHOOK_HEADERS = {
  event: 'X-OnnxBatch-Event',
  timestamp: 'X-OnnxBatch-Timestamp',
  signature: 'X-OnnxBatch-Signature',
  jobId: 'X-OnnxBatch-Job-Id',
} as const;

export type WebhookEvent = 'job.completed' | 'job.failed' | 'job.cancelled';

/** How far a receiver should let a timestamp be from its clock, by default (5 minutes). */
export const DEFAULT_SIGNATURE_TOLERANCE_SECONDS = 300;

const TENANT = /^[A-Za-z0-9_.-]{1,64}$/;
/** Shortest secret accepted: a guessable secret signs nothing. */
export const MIN_WEBHOOK_SECRET_LENGTH = 16;

/** `v1=<hex>` of one secret. */
export function signWebhook(secret: string, timestamp: number | string, body: string | Buffer): string {
  return `v1=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`;
}

/** The value of X-OnnxBatch-Signature for a delivery signed with every one of `secrets`. */
export function signatureHeader(secrets: readonly string[], timestamp: number, body: string): string {
  return secrets.map((secret) => signWebhook(secret, timestamp, body)).join(',');
}

/**
 * For receivers (and tests): whether `header` (X-OnnxBatch-Signature) holds a valid `v1=`
 * signature of `timestamp` (X-OnnxBatch-Timestamp) and the raw `body` under `secret`, and the
 * timestamp is within `toleranceSeconds` of now (refuses replays of old deliveries).
 * Pass the body exactly as received, before any JSON parsing.
 */
export function verifyWebhookSignature(
  secret: string,
  timestamp: string | number,
  body: string | Buffer,
  header: string,
  toleranceSeconds: number = DEFAULT_SIGNATURE_TOLERANCE_SECONDS,
  nowMs: number = Date.now(),
): boolean {
  const seconds = typeof timestamp === 'number' ? timestamp : /^\d{1,15}$/.test(timestamp) ? Number(timestamp) : Number.NaN;
  if (!Number.isSafeInteger(seconds) || Math.abs(nowMs / 1000 - seconds) > toleranceSeconds) return false;
  const expected = Buffer.from(signWebhook(secret, seconds, body));
  return header.split(',').some((candidate) => {
    const given = Buffer.from(candidate.trim());
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

/** Webhook secrets per tenant, from WEBHOOK_SECRETS and the WEBHOOK_SECRET fallback. */
export class WebhookSecrets {
  private constructor(
    private readonly byTenant: ReadonlyMap<string, readonly string[]>,
    private readonly fallback: string,
  ) {}

  static fromConfig(config: { readonly WEBHOOK_SECRETS: string; readonly WEBHOOK_SECRET: string }): WebhookSecrets {
    checkWebhookSecret(config.WEBHOOK_SECRET);
    return new WebhookSecrets(parseWebhookSecrets(config.WEBHOOK_SECRETS), config.WEBHOOK_SECRET);
  }

  /** The secrets a tenant's deliveries are signed with; empty when none is configured (sent unsigned). */
  for(tenant: string): readonly string[] {
    return this.byTenant.get(tenant) ?? (this.fallback ? [this.fallback] : []);
  }
}

/**
 * Parses WEBHOOK_SECRETS: comma-separated `tenant:secret`; a tenant named twice signs with
 * both secrets (rotation). Throws an Error naming the entry (never its secret).
 */
export function parseWebhookSecrets(spec: string): Map<string, string[]> {
  const secrets = new Map<string, string[]>();
  spec
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item !== '')
    .forEach((item, i) => {
      const colon = item.indexOf(':');
      const tenant = colon < 0 ? '' : item.slice(0, colon);
      const secret = colon < 0 ? '' : item.slice(colon + 1);
      if (!TENANT.test(tenant) || secret === '') throw new Error(`entry ${i + 1}: expected tenant:secret`);
      if (secret.length < MIN_WEBHOOK_SECRET_LENGTH)
        throw new Error(`entry ${i + 1}: the secret of tenant '${tenant}' is shorter than ${MIN_WEBHOOK_SECRET_LENGTH} characters`);
      secrets.set(tenant, [...(secrets.get(tenant) ?? []), secret]);
    });
  return secrets;
}

/** Checks WEBHOOK_SECRET (empty = none). */
export function checkWebhookSecret(secret: string): string {
  if (secret !== '' && secret.length < MIN_WEBHOOK_SECRET_LENGTH)
    throw new Error(`is shorter than ${MIN_WEBHOOK_SECRET_LENGTH} characters`);
  return secret;
}
