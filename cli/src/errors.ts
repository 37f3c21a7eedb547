import type { ErrorCode, FieldError, Problem } from '@onnx-batch/contracts';

/**
 * A problem+json answer the server sent (RFC 9457), as an exception. `code` is the server's
 * stable code (`OB_ERR_…`); an answer that was not problem+json (a proxy's HTML page, say) gets
 * `HTTP_<status>` and its text as `detail`.
 */
export class OnnxBatchError extends Error {
  override readonly name = 'OnnxBatchError';
  readonly status: number;
  readonly code: ErrorCode | `HTTP_${number}`;
  readonly type: string;
  readonly title: string;
  readonly detail: string;
  readonly errors: FieldError[];
  /** The whole problem document, extension members included (e.g. `jobId`, `requestId`). */
  readonly problem: Partial<Problem>;

  constructor(status: number, problem: Partial<Problem>) {
    const code = problem.code ?? (`HTTP_${status}` as const);
    const detail = problem.detail ?? problem.title ?? `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.code = code;
    this.type = problem.type ?? 'about:blank';
    this.title = problem.title ?? `HTTP ${status}`;
    this.detail = detail;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.problem = problem;
  }

  /** 4xx: the request was wrong (bad rows, unknown job, no key…); retrying it unchanged will not help. */
  get isClientError(): boolean {
    return this.status >= 400 && this.status < 500;
  }
}

/** The server could not be reached, or the connection broke before the answer was complete. */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';

  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach ${url}: ${describeCause(cause)}`, { cause });
  }
}

/** `wait()` gave up before the job finished; the job itself goes on. */
export class WaitTimeoutError extends Error {
  override readonly name = 'WaitTimeoutError';

  constructor(
    readonly jobId: string,
    readonly timeoutMs: number,
    /** The last status seen, if any. */
    readonly lastStatus: string | null,
    /** What was waited for: a job, or an evaluation (whose id `jobId` then holds). */
    what: 'job' | 'evaluation' = 'job',
  ) {
    super(
      `${what} ${jobId} did not finish within ${Math.round(timeoutMs / 1000)} s (last seen: ${lastStatus ?? 'nothing'}); ` +
        'it goes on running',
    );
  }
}

/** The command line, or a local file it names, is wrong (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The innermost useful text of a fetch failure (`fetch failed` hides the reason in `cause`). */
function describeCause(cause: unknown): string {
  const parts: string[] = [];
  let current: unknown = cause;
  for (let depth = 0; current instanceof Error && depth < 4; depth++) {
    const code = (current as Error & { code?: unknown }).code;
    const text = typeof code === 'string' && !current.message.includes(code) ? `${current.message} (${code})` : current.message;
    if (text !== 'fetch failed') parts.push(text);
    current = current.cause;
  }
  if (parts.length === 0) return typeof cause === 'string' ? cause : 'connection failed';
  return parts.join(': ');
}
