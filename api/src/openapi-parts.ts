import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERRORS, PROBLEM_CONTENT_TYPE, type ErrorCode, type ModelManifest } from '@onnx-batch/contracts';
import { type ModelEntry, type ModelVersion } from '@onnx-batch/shared';

/**
 * What every router's OpenAPI fragment is built from: the shapes, `$ref` and content helpers, the
 * problem+json answers by error code, and the component names of model rows and results. Each
 * router exports its own paths and schemas (batch-routes.ts, model-routes.ts, …); openapi.ts
 * only frames and merges them. This file imports no router, so no fragment imports back.
 */

/** The API package's version: `info.version` of the document and the protocol v2 server metadata. */
export const API_VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

export type Schema = Record<string, unknown>;
export type Operation = Record<string, unknown>;
export type PathItem = Record<string, Operation>;
export type Paths = Record<string, PathItem>;

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });

/** A request body or response of JSON content; `extra` beside the schema (examples). */
export const json = (schema: Schema, extra: Schema = {}): Schema => ({ content: { 'application/json': { schema, ...extra } } });

/** A mutable deep copy of a (readonly, `as const`) schema. */
export function copy<T>(schema: T): Schema {
  return JSON.parse(JSON.stringify(schema)) as Schema;
}

/** The `{name}` path parameter of the model routes: one of the models served now. */
export function modelNameParameter(entries: readonly ModelEntry[]): Schema {
  return { name: 'name', in: 'path', required: true, schema: { type: 'string', enum: entries.map((e) => e.name) } };
}

/** Component names allow [A-Za-z0-9._-]; model names are [a-z0-9-] and versions digits. */
export function componentName(version: ModelVersion, part: 'Row' | 'Result'): string {
  return `${version.manifest.name}.v${version.manifest.version}.${part}`;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** Guard failures any authenticated route can answer. */
export const GUARD_CODES: ErrorCode[] = ['OB_ERR_UNAUTHORIZED', 'OB_ERR_FORBIDDEN', 'OB_ERR_RATE_LIMITED', 'OB_ERR_INTERNAL'];
/** What a route that writes to Redis may also answer: Redis is full (507, `Retry-After`; nothing of the request kept). */
export const WRITE_GUARD_CODES: ErrorCode[] = [...GUARD_CODES, 'OB_ERR_STORAGE_FULL'];
/** What a route that creates jobs may also answer: Redis is full or above its high watermark (507), or may evict keys (503). */
export const SUBMIT_GUARD_CODES: ErrorCode[] = [...WRITE_GUARD_CODES, 'OB_ERR_REDIS_EVICTING'];

/** problem+json answers, one per status, each naming the codes it can carry. */
export function problemResponses(codes: readonly ErrorCode[]): Record<string, unknown> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set(codes)) {
    const status = ERRORS[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus].sort(([a], [b]) => a - b)) {
    responses[String(status)] = {
      description: list.map((code) => `\`${code}\`: ${ERRORS[code].title}`).join('; '),
      ...(status === 429
        ? { headers: { 'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } } } }
        : {}),
      content: {
        [PROBLEM_CONTENT_TYPE]: {
          schema: { allOf: [ref('Problem'), { properties: { status: { const: status }, code: { enum: list } } }] },
        },
      },
    };
  }
  return responses;
}

/** The `Problem` and `FieldError` components every problem answer refers to. */
export function problemSchemas(): Record<string, Schema> {
  return {
    FieldError: {
      type: 'object',
      description: 'One offending field (of one row, when `row` or `line` is present).',
      required: ['message'],
      properties: {
        row: { type: 'integer', minimum: 0, description: '0-based row index (JSON bodies).' },
        line: { type: 'integer', minimum: 1, description: '1-based line (streamed NDJSON/CSV bodies).' },
        field: { type: 'string' },
        message: { type: 'string' },
      },
    },
    Problem: {
      type: 'object',
      description: 'RFC 9457 problem details (`application/problem+json`); docs/errors.md lists every code.',
      required: ['type', 'title', 'status', 'detail', 'code'],
      properties: {
        type: { type: 'string', description: '`urn:onnx-batch:problem:<kind>`' },
        title: { type: 'string' },
        status: { type: 'integer' },
        detail: { type: 'string' },
        code: { type: 'string', enum: Object.keys(ERRORS) },
        instance: { type: 'string' },
        errors: { type: 'array', items: ref('FieldError') },
        jobId: { type: 'string' },
        requestId: { type: 'string' },
      },
      additionalProperties: true,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Examples

/** A value that passes a feature's schema, for examples. */
function exampleValue(feature: ModelManifest['features'][number]): unknown {
  switch (feature.type) {
    case 'number': {
      const low = feature.minimum ?? 0;
      const high = feature.maximum ?? low + 1;
      return Math.round(((low + high) / 2) * 100) / 100;
    }
    case 'integer':
      return Math.ceil(feature.minimum ?? 0);
    case 'string':
      return 'example text'.slice(0, feature.maxLength ?? 12).padEnd(feature.minLength ?? 0, 'x');
    case 'tensor': {
      const shape = feature.shape ?? [];
      const fill = Math.max(0, feature.minimum ?? 0);
      if (feature.base64 === 'uint8')
        return Buffer.alloc(
          shape.reduce((a, b) => a * b, 1),
          fill,
        ).toString('base64');
      const nest = (dims: readonly number[]): unknown =>
        dims.length === 0 ? fill : Array.from({ length: dims[0] ?? 0 }, () => nest(dims.slice(1)));
      return nest(shape);
    }
  }
}

/** A row of the model version that passes its schema (the examples of the submit and predict bodies). */
export function exampleRow(manifest: ModelManifest): Record<string, unknown> {
  return Object.fromEntries(manifest.features.map((f) => [f.name, exampleValue(f)]));
}

/** The version an example of a model is made from: its default, else its first. */
export function exampleVersion(entry: ModelEntry): ModelVersion | undefined {
  return entry.versions.find((v) => v.manifest.version === entry.defaultVersion) ?? entry.versions[0];
}
