import http from 'node:http';
import https from 'node:https';
import { UnrecoverableError, type Job } from 'bullmq';
import { isFinished, jobStatusDocument } from '@onnx-batch/contracts';
import {
  CallbackUrlError,
  checkCallbackUrl,
  parseAllowList,
  pinnedLookup,
  signatureHeader,
  systemLookup,
  WEBHOOK_HEADERS,
  WebhookSecrets,
  type AllowList,
  type Config,
  type DeliverWebhookData,
  type JobRecord,
  type JobStore,
  type Logger,
  type LookupAll,
  type ResolvedAddress,
  type WebhookEvent,
} from '@onnx-batch/shared';

export type WebhookOutcome = { outcome: 'delivered'; httpStatus: number } | { outcome: 'skipped' };

/** Base path of the URLs in a delivered status document (as `GET /v1/batch-result/:id` answers). */
const DOCUMENT_BASE_PATH = '/v1';

/**
 * Delivers one job's webhook: POSTs its status document, signed, to its callback URL. The URL
 * is checked again against the SSRF rules after resolving its host now, and the request goes to
 * the addresses checked. 2xx is delivered; any other answer (redirects are not followed), a
 * timeout or a network error throws, so BullMQ retries with backoff; a URL that is now refused
 * fails for good. Where delivery stands is kept on the job record (`JobStore.webhooks`).
 */
export class WebhookDeliverer {
  private readonly allowList: AllowList;
  private readonly secrets: WebhookSecrets;
  private readonly warnedUnsigned = new Set<string>();

  constructor(
    private readonly store: JobStore,
    private readonly config: Pick<Config, 'WEBHOOK_ALLOW_HOSTS' | 'WEBHOOK_SECRETS' | 'WEBHOOK_SECRET' | 'WEBHOOK_TIMEOUT_MS'>,
    private readonly logger: Logger,
    private readonly lookup: LookupAll = systemLookup,
  ) {
    this.allowList = parseAllowList(config.WEBHOOK_ALLOW_HOSTS);
    this.secrets = WebhookSecrets.fromConfig(config);
  }

  async process(job: Job<DeliverWebhookData>): Promise<WebhookOutcome> {
    const { jobId } = job.data;
    const attempt = job.attemptsMade + 1;
    const log = this.logger.child({ jobId, attempt });
    const record = await this.store.get(jobId);
    if (!record?.callbackUrl || !isFinished(record.status)) {
      log.debug('webhook skipped: the job is gone, unfinished or has no callback URL');
      return { outcome: 'skipped' };
    }
    try {
      const httpStatus = await this.deliver(record, record.callbackUrl, log);
      await this.store.webhooks.record(jobId, { status: 'delivered', attempts: attempt, at: new Date().toISOString(), error: null });
      log.info('webhook delivered', { httpStatus, event: eventOf(record) });
      return { outcome: 'delivered', httpStatus };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      const final = error instanceof UnrecoverableError || attempt >= (job.opts.attempts ?? 1);
      await this.store.webhooks
        .record(jobId, { status: final ? 'failed' : 'retrying', attempts: attempt, at: new Date().toISOString(), error: message })
        .catch((e: unknown) => log.warn('could not record the webhook state', { error: String(e) }));
      if (final) log.error('webhook failed for good', { error: message });
      else log.warn('webhook attempt failed; it will be retried', { error: message });
      throw error;
    }
  }

  private async deliver(record: JobRecord, callbackUrl: string, log: Logger): Promise<number> {
    let target;
    try {
      target = await checkCallbackUrl(callbackUrl, this.allowList, { lookup: this.lookup });
    } catch (error) {
      // A host that does not resolve now may later; an address that is refused stays refused.
      if (error instanceof CallbackUrlError && error.kind !== 'unresolved')
        throw new UnrecoverableError(`the callback URL is refused: ${error.message}`);
      throw error;
    }
    const body = JSON.stringify(jobStatusDocument(record, DOCUMENT_BASE_PATH));
    const timestamp = Math.floor(Date.now() / 1000);
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      'Content-Length': String(Buffer.byteLength(body)),
      'User-Agent': 'onnx-batch-webhook/1',
      [WEBHOOK_HEADERS.event]: eventOf(record),
      [WEBHOOK_HEADERS.timestamp]: String(timestamp),
      [WEBHOOK_HEADERS.jobId]: record.id,
    };
    const secrets = this.secrets.for(record.tenant);
    if (secrets.length > 0) {
      headers[WEBHOOK_HEADERS.signature] = signatureHeader(secrets, timestamp, body);
    } else if (!this.warnedUnsigned.has(record.tenant)) {
      this.warnedUnsigned.add(record.tenant);
      log.warn('no webhook secret is configured for this tenant: its webhooks are sent unsigned. Set WEBHOOK_SECRETS or WEBHOOK_SECRET.', {
        tenant: record.tenant,
      });
    }
    const httpStatus = await post(target.url, target.addresses, headers, body, this.config.WEBHOOK_TIMEOUT_MS);
    if (httpStatus < 200 || httpStatus >= 300) {
      const redirect = httpStatus >= 300 && httpStatus < 400 ? ' (redirects are not followed)' : '';
      throw new Error(`the callback URL answered HTTP ${httpStatus}${redirect}`);
    }
    return httpStatus;
  }
}

function eventOf(record: JobRecord): WebhookEvent {
  return record.status === 'completed' ? 'job.completed' : record.status === 'cancelled' ? 'job.cancelled' : 'job.failed';
}

/**
 * One POST, connecting only to `addresses` (already checked), within `timeoutMs` from the
 * connection to the answer's status line. Answers the HTTP status; the answer's body is dropped.
 */
function post(
  url: URL,
  addresses: readonly ResolvedAddress[],
  headers: Record<string, string>,
  body: string,
  timeoutMs: number,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const transport = url.protocol === 'https:' ? https : http;
    const request = transport.request(
      url,
      { method: 'POST', headers, lookup: pinnedLookup(addresses), agent: false, signal: AbortSignal.timeout(timeoutMs) },
      (response) => {
        resolve(response.statusCode ?? 0);
        response.resume();
        response.on('error', () => undefined);
      },
    );
    request.on('error', (error) => {
      reject(
        error.name === 'AbortError' || error.name === 'TimeoutError'
          ? new Error(`the callback URL did not answer within ${timeoutMs} ms`)
          : new Error(`the callback URL could not be reached: ${error.message}`),
      );
    });
    request.end(body);
  });
}
