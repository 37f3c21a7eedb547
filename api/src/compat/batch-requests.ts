import { ProblemError } from '@onnx-batch/contracts';
import type { ModelVersion } from '@onnx-batch/shared';
import type { StoredFile, FileStore } from './file-store';

/** Longest `custom_id` a request line may carry: the longest row id a job takes (ROW_ID_SCHEMA). */
export const MAX_CUSTOM_ID_LENGTH = 256;
/** Most validation errors a failed batch reports (the rest are counted in the last message). */
export const MAX_BATCH_ERRORS = 100;

/** One entry of a failed batch's `errors.data`. */
export interface BatchValidationError {
  code: string;
  message: string;
  param: string | null;
  line: number | null;
}

/** A request the endpoint refused before the job: it goes to the error file as its endpoint would have answered. */
export interface RefusedRequest {
  /** 0-based index of the request line. */
  index: number;
  customId: string;
  status: number;
  code: string;
  message: string;
  param: string | null;
}

/** What a request line's body becomes: the job's row, or the answer its endpoint gives instead. */
export type RequestRow = { row: Record<string, unknown>; note?: RequestNote } | { refused: Omit<RefusedRequest, 'index' | 'customId'> };

/** What answering one row's request takes beside its result. */
export interface ResponseContext {
  /** The version that ran the job. */
  model: ModelVersion;
  /** The model as the batch names it (a body's `model`, else the version's name). */
  named: string;
  /** The row's note, when the endpoint keeps notes. */
  note: RequestNote | null;
}

/** What an endpoint must remember of a request to answer it beyond its row's result (embeddings: the encoding and token count). */
export type RequestNote = (string | number)[];

/**
 * An endpoint request lines may name: how its body becomes one row of one model's job, and how a
 * row's result becomes the response body that endpoint answers.
 */
export interface BatchEndpoint {
  url: string;
  /** The model the url names, or null when each body names it (then `modelOfBody`). */
  model: { name: string; version: string | undefined } | null;
  modelOfBody?(body: unknown): string | null;
  /** The model a body's name selects: its name and the version it pins, if any. */
  modelName?(model: string): { name: string; version?: string | undefined };
  rowOf(body: unknown, model: ModelVersion): RequestRow;
  /** Whether rowOf gives notes (kept beside the job, one per row, for responseBody). */
  notes: boolean;
  responseBody(result: Record<string, unknown>, context: ResponseContext): unknown;
}

/** What validating a batch's input file found. */
export interface CheckedFile {
  requests: number;
  errors: BatchValidationError[];
  /** The model the bodies name, when the endpoint takes it from them. */
  bodyModel: string | null;
}

/**
 * The first pass over an input file: every line must be a JSON object with a unique `custom_id`,
 * `method` POST, `url` equal to the batch's endpoint and an object `body`; at most `maxRequests`
 * lines; bodies naming a model must all name the same. Nothing runs unless the whole file passes.
 */
export async function checkInputFile(
  files: FileStore,
  file: StoredFile,
  endpoint: BatchEndpoint,
  maxRequests: number,
): Promise<CheckedFile> {
  const errors: BatchValidationError[] = [];
  let more = 0;
  const fail = (error: BatchValidationError): void => {
    if (errors.length < MAX_BATCH_ERRORS) errors.push(error);
    else more++;
  };
  const seen = new Set<string>();
  let requests = 0;
  let bodyModel: string | null = null;
  for await (const { line, text, last } of requestLines(files, file)) {
    if (text.trim() === '') {
      if (!last) fail({ code: 'invalid_json_line', message: `line ${line} is empty`, param: null, line });
      continue;
    }
    requests++;
    if (requests > maxRequests) {
      fail({ code: 'too_many_requests', message: `a batch may hold at most ${maxRequests} requests`, param: null, line });
      break;
    }
    const request = parseLine(text);
    if (typeof request === 'string') {
      fail({ code: 'invalid_json_line', message: `line ${line} ${request}`, param: null, line });
      continue;
    }
    const problem = requestProblem(request, endpoint, seen);
    if (problem) {
      fail({ ...problem, message: `line ${line}: ${problem.message}`, line });
      continue;
    }
    if (endpoint.modelOfBody) {
      const named = endpoint.modelOfBody(request.body);
      if (named !== null && bodyModel === null) bodyModel = named;
      else if (named !== null && named !== bodyModel)
        fail({
          code: 'mixed_models',
          message: `line ${line}: body.model '${named}' differs from '${bodyModel}' of an earlier line`,
          param: 'body.model',
          line,
        });
    }
  }
  if (requests === 0 && errors.length === 0)
    fail({ code: 'empty_file', message: 'the input file holds no request', param: null, line: null });
  if (more > 0) {
    const last = errors[errors.length - 1] as BatchValidationError;
    last.message += ` (and ${more} more error${more > 1 ? 's' : ''})`;
  }
  return { requests, errors, bodyModel };
}

interface RequestLine {
  custom_id: string;
  method: string;
  url: string;
  body: unknown;
}

function parseLine(text: string): RequestLine | string {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return `is not valid JSON (${(error as Error).message.slice(0, 120)})`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'is not a JSON object';
  return value as RequestLine;
}

function requestProblem(request: RequestLine, endpoint: BatchEndpoint, seen: Set<string>): Omit<BatchValidationError, 'line'> | null {
  const invalid = (param: string, message: string) => ({ code: 'invalid_request', message: `'${param}' ${message}`, param });
  const { custom_id: customId, method, url, body } = request;
  if (typeof customId !== 'string' || customId.length === 0) return invalid('custom_id', 'must be a non-empty string');
  if (customId.length > MAX_CUSTOM_ID_LENGTH) return invalid('custom_id', `must be at most ${MAX_CUSTOM_ID_LENGTH} characters`);
  if (seen.has(customId))
    return { code: 'duplicate_custom_id', message: `custom_id '${customId.slice(0, 64)}' is used twice`, param: 'custom_id' };
  seen.add(customId);
  if (method !== 'POST') return invalid('method', 'must be "POST"');
  if (typeof url !== 'string') return invalid('url', 'must be a string');
  if (url !== endpoint.url)
    return {
      code: 'mismatched_endpoint',
      message: `url '${url.slice(0, 200)}' differs from the batch's endpoint '${endpoint.url}'`,
      param: 'url',
    };
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return invalid('body', 'must be a JSON object');
  const extra = Object.keys(request).find((k) => !['custom_id', 'method', 'url', 'body'].includes(k));
  if (extra !== undefined) return invalid(extra.slice(0, 64), 'is not a field of a request line');
  return null;
}

/** The second pass: each request of a checked file, in order, as its row or its refusal. */
export async function* requestRows(
  files: FileStore,
  file: StoredFile,
  endpoint: BatchEndpoint,
  model: ModelVersion,
): AsyncGenerator<{ index: number; customId: string } & RequestRow> {
  let index = 0;
  for await (const { text } of requestLines(files, file)) {
    if (text.trim() === '') continue;
    const request = JSON.parse(text) as RequestLine;
    const customId = request.custom_id;
    let outcome: RequestRow;
    try {
      outcome = endpoint.rowOf(request.body, model);
    } catch (error) {
      if (!(error instanceof ProblemError)) throw error;
      outcome = { refused: refusalOf(error) };
    }
    if ('row' in outcome) {
      // The request's custom_id is the row's id: the job's results carry it back.
      if (outcome.row.id !== undefined)
        outcome = {
          refused: { status: 400, code: 'invalid_request', message: "a row's id is its request's custom_id; leave 'id' out", param: 'id' },
        };
      else outcome = { ...outcome, row: { ...outcome.row, id: customId } };
    }
    yield { index: index++, customId, ...outcome };
  }
}

/** How a refused request's error reads in the error file: our message, with the field it names. */
export function refusalOf(error: ProblemError): Omit<RefusedRequest, 'index' | 'customId'> {
  const errors = error.extensions.errors as { field?: string }[] | undefined;
  return { status: error.status, code: error.code, message: error.message, param: errors?.[0]?.field ?? null };
}

/** The file's lines, and whether each is the last (a final newline leaves one empty last line). */
async function* requestLines(files: FileStore, file: StoredFile): AsyncGenerator<{ line: number; text: string; last: boolean }> {
  let held: { line: number; text: string } | null = null;
  for await (const next of files.lines(file)) {
    if (held) yield { ...held, last: false };
    held = next;
  }
  if (held) yield { ...held, last: true };
}
