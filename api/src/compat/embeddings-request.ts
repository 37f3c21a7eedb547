import { ProblemError, type ModelManifest } from '@onnx-batch/contracts';

/**
 * OpenAI's embeddings request and response (POST /v1/embeddings), as pure functions: the sync
 * route (routes/embeddings-routes.ts) and the Batch API's lines whose url is /v1/embeddings both
 * turn a request into rows of an ordinary job and its results back into OpenAI's body.
 */
export interface EmbeddingsRequest {
  /** `name` (the rollout's version) or `name@version` (that version). */
  model: string;
  inputs: string[];
  encodingFormat: 'float' | 'base64';
  dimensions?: number;
}

export interface EmbeddingsResponse {
  object: 'list';
  data: { object: 'embedding'; index: number; embedding: number[] | string }[];
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

const FIELDS = new Set(['model', 'input', 'encoding_format', 'dimensions', 'user']);

function invalid(field: string, message: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_REQUEST', `'${field}' ${message}`, { errors: [{ field, message }] });
}

/**
 * The request body, checked: `model` a non-empty string; `input` a non-empty string or a
 * non-empty array of non-empty strings (token arrays — arrays of integers — are refused: the
 * model tokenises text itself); `encoding_format` "float" (default) or "base64"; `dimensions` a
 * positive integer; `user` a string, accepted and ignored. Any other field is refused. Throws
 * OB_ERR_INVALID_REQUEST naming the field (`input[3]` for one element).
 */
export function parseEmbeddingsRequest(body: unknown): EmbeddingsRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('(root)', 'must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const key of Object.keys(b)) if (!FIELDS.has(key)) throw invalid(key, 'is not a field of an embeddings request');
  if (typeof b.model !== 'string' || b.model.length === 0) throw invalid('model', 'must be the name of an embedding model');
  const input = b.input;
  if (input === undefined) throw invalid('input', 'is required');
  let inputs: string[];
  if (typeof input === 'string') {
    if (input.length === 0) throw invalid('input', 'must not be an empty string');
    inputs = [input];
  } else if (Array.isArray(input)) {
    if (input.length === 0) throw invalid('input', 'must not be an empty array');
    if (input.some((v) => typeof v === 'number' || Array.isArray(v)))
      throw invalid('input', 'must be a string or an array of strings: token arrays are not accepted (the model tokenises text itself)');
    input.forEach((v, i) => {
      if (typeof v !== 'string') throw invalid(`input[${i}]`, 'must be a string');
      if (v.length === 0) throw invalid(`input[${i}]`, 'must not be an empty string');
    });
    inputs = input as string[];
  } else {
    throw invalid('input', 'must be a string or an array of strings');
  }
  const format = b.encoding_format ?? 'float';
  if (format !== 'float' && format !== 'base64') throw invalid('encoding_format', "must be 'float' or 'base64'");
  if (b.user !== undefined && typeof b.user !== 'string') throw invalid('user', 'must be a string');
  const request: EmbeddingsRequest = { model: b.model, inputs, encodingFormat: format };
  if (b.dimensions !== undefined) {
    if (typeof b.dimensions !== 'number' || !Number.isInteger(b.dimensions) || b.dimensions < 1)
      throw invalid('dimensions', 'must be a positive integer');
    request.dimensions = b.dimensions;
  }
  return request;
}

/** `model` as name and optional version: `textembed` or `textembed@1`. */
export function embeddingModelName(model: string): { name: string; version?: string } {
  const at = model.lastIndexOf('@');
  return at < 0 ? { name: model } : { name: model.slice(0, at), version: model.slice(at + 1) };
}

/**
 * Refuses a model version that is not an embedding model, or `dimensions` other than its own
 * (the vectors cannot be shortened: they are normalised at their full length).
 */
export function checkEmbeddingModel(manifest: ModelManifest, dimensions?: number): void {
  if (manifest.result.kind !== 'embedding')
    throw invalid('model', `names ${manifest.name} ${manifest.version}, a ${manifest.task} model, not an embedding model`);
  const own = manifest.result.dimensions;
  if (dimensions !== undefined && dimensions !== own)
    throw invalid('dimensions', `must be ${own ?? '?'} (the dimension of ${manifest.name} ${manifest.version}) or left out`);
}

/** The rows of a job embedding `inputs`: one row a text, in the model's one string feature. Refuses a non-embedding model. */
export function embeddingRowsFor(manifest: ModelManifest, inputs: readonly string[]): Record<string, string>[] {
  checkEmbeddingModel(manifest);
  const strings = manifest.features.filter((f) => f.type === 'string');
  const feature = strings[0];
  if (!feature || strings.length !== 1 || manifest.features.length !== 1)
    throw invalid('model', `names ${manifest.name} ${manifest.version}, which does not take one text a row`);
  return inputs.map((text) => ({ [feature.name]: text }));
}

const TOKEN = /[\p{L}\p{N}_]+/gu;

/**
 * Tokens of a text as the embedding graph counts them (StringNormalizer LOWER, then
 * com.microsoft.Tokenizer `[\pL\pN_]+` with mincharnum 2): after lowercasing, the runs of letters,
 * digits and `_` of at least 2 characters, whether the vocabulary knows them or not.
 */
export function countTokens(text: string): number {
  let n = 0;
  for (const match of text.toLowerCase().matchAll(TOKEN)) if ([...match[0]].length >= 2) n++;
  return n;
}

/** A vector as OpenAI's base64: its float32 values, little-endian, base64-encoded. */
export function float32Base64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((v, i) => bytes.writeFloatLE(v, i * 4));
  return bytes.toString('base64');
}

/** The tokens of every input together, as `usage` reports them (countTokens). */
export function tokensOf(inputs: readonly string[]): number {
  return inputs.reduce((sum, text) => sum + countTokens(text), 0);
}

/** OpenAI's response body for `vectors` (one per input, in order); `tokens` of the inputs (tokensOf) go to `usage`. */
export function embeddingsResponseBody(
  modelName: string,
  vectors: number[][],
  tokens: number,
  encodingFormat: 'float' | 'base64',
): EmbeddingsResponse {
  return {
    object: 'list',
    data: vectors.map((vector, index) => ({
      object: 'embedding',
      index,
      embedding: encodingFormat === 'base64' ? float32Base64(vector) : vector,
    })),
    model: modelName,
    usage: { prompt_tokens: tokens, total_tokens: tokens },
  };
}
