import type { IncomingMessage, ServerResponse } from 'node:http';
import { JOB_ID_PATTERN, type Logger } from '@onnx-batch/shared';
import { MAX_WAIT_SECONDS, pollJob, type PollDeps } from '../job-view';
import type { ApiMetrics } from '../metrics';
import { callerOf, type KeyRing } from './auth';
import { answerError } from './problem';
import { spendToken, type RateLimiter } from './rate-limit';
import { beginRequest } from './request-context';
import { setSecurityHeaders } from './security-headers';

export interface FastPollDeps extends PollDeps {
  logger: Logger;
  keys: KeyRing;
  limiter: RateLimiter | null;
  metrics?: ApiMetrics | undefined;
}

/** `/v1/batch-result/<id>` or `/batch-result/<id>`, with at most `?wait=<seconds>`, exactly as clients are told to poll. */
const POLL_TARGET = /^(\/v1)?\/batch-result\/([^/?]+)(?:\?wait=([0-9]{1,2}(?:\.[0-9]{1,6})?))?$/;

/**
 * Polls, the request clients send most, answered without Express: Express's routing and the
 * 405 route walk cost polls more than the poll itself (docs/adr/0006). Only the plain
 * form is taken: a GET of a well-formed job id, with a valid key of the `read` role and at most
 * a valid `?wait=`. Anything else (HEAD, another query, a bad or missing key, an id that is not
 * one) is left to Express, which answers it as before; nothing is consumed or written first.
 * A poll taken here runs what Express runs, in the same order, through the same functions:
 * request id and log line, metrics, the security headers, the rate limit, `pollJob`, errors as
 * problem+json. `test/integration/fast-polls.test.ts` compares both paths answer by answer.
 *
 * Answers whether it took the request.
 */
export function fastPolls(deps: FastPollDeps): { take(req: IncomingMessage, res: ServerResponse): boolean; readonly taken: number } {
  let taken = 0;

  const answer = async (
    req: IncomingMessage,
    res: ServerResponse,
    poll: { basePath: string; id: string; tenant: string; wait: number },
    keyId: string,
  ): Promise<void> => {
    let jobId: string | undefined;
    const requestId = beginRequest(deps.logger, req, res, () => jobId);
    deps.metrics?.timeRequest('GET', res, () => `${poll.basePath}/batch-result/:id`);
    setSecurityHeaders(res);
    try {
      if (deps.limiter) await spendToken(deps.limiter, keyId, res);
      const body = await pollJob(deps, poll, (id) => (jobId = id));
      res.statusCode = 200;
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.setHeader('Content-Length', Buffer.byteLength(body));
      res.end(body);
    } catch (error) {
      answerError(deps.logger, error, { req, res, requestId, target: req.url ?? '' });
    }
  };

  return {
    get taken() {
      return taken;
    },
    take(req, res) {
      if (req.method !== 'GET') return false;
      const target = POLL_TARGET.exec(req.url ?? '');
      const id = target?.[2];
      if (!target || !id || !JOB_ID_PATTERN.test(id)) return false;
      const wait = target[3] === undefined ? 0 : Number(target[3]);
      if (wait > MAX_WAIT_SECONDS) return false;
      const caller = callerOf(deps.keys, req.headers);
      if (!caller?.roles.has('read')) return false;
      taken++;
      answer(req, res, { basePath: target[1] ?? '', id, tenant: caller.tenant, wait }, caller.keyId).catch((error: unknown) => {
        deps.logger.error('poll failed', { error: String(error) });
        res.destroy();
      });
      return true;
    },
  };
}
