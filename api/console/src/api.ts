// Talking to the API: every request is same-origin, carries the key as a Bearer header (never in
// a URL, never a cookie) and turns a problem+json answer into an ApiError naming what went wrong.

const KEY_ITEM = 'onnx-batch.api-key';

/** The key typed into the form, for this tab only (sessionStorage: gone when the tab closes). */
export const apiKey = {
  get: (): string | null => sessionStorage.getItem(KEY_ITEM),
  set: (key: string): void => sessionStorage.setItem(KEY_ITEM, key),
  forget: (): void => sessionStorage.removeItem(KEY_ITEM),
};

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | null,
    message: string,
  ) {
    super(message);
  }
}

/** Called on a 401: the key is gone or wrong, so the console asks for one again. */
let onUnauthorized: (error: ApiError) => void = () => undefined;
export function whenUnauthorized(handler: (error: ApiError) => void): void {
  onUnauthorized = handler;
}

function headers(accept: string): Headers {
  const result = new Headers({ Accept: accept });
  const key = apiKey.get();
  if (key) result.set('Authorization', `Bearer ${key}`);
  return result;
}

async function errorOf(response: Response): Promise<ApiError> {
  let code: string | null = null;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = (await response.json()) as { code?: string; title?: string; detail?: string; error?: { message?: string } };
    code = body.code ?? null;
    message = body.detail ?? body.title ?? body.error?.message ?? message;
  } catch {
    // not JSON: the status line says enough
  }
  return new ApiError(response.status, code, message);
}

/** One request; the answer when it is 2xx, else an ApiError (and a 401 also reaches whenUnauthorized). */
export async function call(method: string, path: string, body?: unknown, accept = 'application/json'): Promise<Response> {
  const init: RequestInit = { method, headers: headers(accept), credentials: 'omit', cache: 'no-store', referrerPolicy: 'no-referrer' };
  if (body !== undefined) {
    (init.headers as Headers).set('Content-Type', 'application/json');
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.ok) return response;
  const error = await errorOf(response);
  if (response.status === 401) onUnauthorized(error);
  throw error;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await (await call('GET', path)).json()) as T;
}

export async function sendJson<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await call(method, path, body);
  return (response.status === 204 ? null : await response.json()) as T;
}

/** The NDJSON lines of a streamed answer, read as they arrive, stopping after `max` lines. */
export async function ndjsonLines<T>(path: string, max: number): Promise<{ lines: T[]; truncated: boolean }> {
  const response = await call('GET', path, undefined, 'application/x-ndjson');
  const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
  const lines: T[] = [];
  let rest = '';
  while (reader) {
    const { value, done } = await reader.read();
    if (done) break;
    const parts = (rest + value).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      if (line.trim()) lines.push(JSON.parse(line) as T);
      if (lines.length >= max) {
        await reader.cancel();
        return { lines, truncated: true };
      }
    }
  }
  if (rest.trim()) lines.push(JSON.parse(rest) as T);
  return { lines, truncated: false };
}

/** Downloads an answer as a file (the key rides in a header, so a plain link cannot fetch it). */
export async function download(path: string, accept: string, fallbackName: string): Promise<void> {
  const response = await call('GET', path, undefined, accept);
  const disposition = response.headers.get('Content-Disposition') ?? '';
  const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

interface OpenApiParameter {
  name: string;
  in: string;
  schema?: { enum?: string[]; items?: { enum?: string[] } };
}
type OpenApi = { paths: Record<string, Record<string, { parameters?: OpenApiParameter[] }>> };

let openapi: Promise<OpenApi> | null = null;

/**
 * The values a query parameter takes, as the API describes itself (/openapi.json): result formats,
 * drift windows and job states are the server's facts, not copies kept here.
 */
export async function parameterValues(path: string, parameter: string): Promise<string[]> {
  openapi ??= fetch('/openapi.json', { credentials: 'omit', referrerPolicy: 'no-referrer' }).then((r) => r.json() as Promise<OpenApi>);
  const operation = (await openapi).paths[path]?.get;
  const found = operation?.parameters?.find((p) => p.name === parameter && p.in === 'query');
  return found?.schema?.enum ?? found?.schema?.items?.enum ?? [];
}
