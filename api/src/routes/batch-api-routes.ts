import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import busboy from 'busboy';
import { Router, type Request, type Response } from 'express';
import { ProblemError } from '@onnx-batch/contracts';
import type { Config } from '@onnx-batch/shared';
import {
  batchFileOf,
  batchFilesExpireAt,
  batchIdOfHex,
  batchNotFound,
  batchObject,
  type BatchService,
  type BatchView,
} from '../compat/batch-service';
import { fileObject, type FileStore, type StoredFile } from '../compat/file-store';
import { jsonBody } from '../http/body';
import type { Paths } from '../openapi-parts';
import { idempotencyKeyHash } from './batch-routes';
import { COMPAT_ERROR_RESPONSE } from './embeddings-routes';

export interface BatchApiRouteDeps {
  config: Pick<Config, 'MAX_BODY_BYTES' | 'FILES_TTL_SECONDS' | 'FILES_MAX_BYTES' | 'RESULT_TTL_SECONDS'>;
  files: FileStore;
  batches: BatchService;
}

/** Purposes a file may be uploaded for: a batch's input is the only use this service has for one. */
const PURPOSES = ['batch'];
/** The Batch API's bounds on a file's own expiry (`expires_after[seconds]`). */
const FILE_EXPIRY_SECONDS = { min: 3600, max: 2_592_000 };

/**
 * The Batch API's files and batches (docs/interop.md): adapters over FileStore and BatchService,
 * which run every batch as an ordinary job. Errors are answered in that API's shape
 * (compat/compat-errors.ts, wired in app.ts).
 */
export function batchApiRoutes(deps: BatchApiRouteDeps): Router {
  const router = Router();
  const { files, batches, config } = deps;

  router.post('/files', async (req: Request, res: Response) => {
    const file = await receiveFile(req, files, config);
    res.status(200).json(fileObject(file));
  });

  router.get('/files', async (req: Request, res: Response) => {
    const query = req.query as Record<string, string | undefined>;
    const limit = integerParam(query.limit, 'limit', 1, 10_000, 10_000);
    const order = query.order ?? 'desc';
    if (order !== 'asc' && order !== 'desc') throw invalidParam('order', 'must be "asc" or "desc"');
    const page = await files.list(req.caller.tenant, { limit, after: query.after ?? null, order, purpose: query.purpose ?? null });
    const data = page.files.map(fileObject);
    res.json(listOf(data, page.hasMore));
  });

  router.get('/files/:id', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const made = batchFileOf(id);
    if (made) {
      const view = await batchOfFile(batches, req.caller.tenant, made.batchHex);
      if (!view || !hasFile(view, id)) throw fileNotFound(id);
      let bytes = 0;
      for await (const line of batches.fileLines(view, made.which)) bytes += Buffer.byteLength(line) + 1;
      const { batch } = view;
      const purpose = 'batch_output';
      res.json(
        fileObject({
          id,
          bytes,
          createdAt: batch.createdAt,
          expiresAt: batchFilesExpireAt(view, config.RESULT_TTL_SECONDS),
          filename: `${batch.id}_${made.which}.jsonl`,
          purpose,
        }),
      );
      return;
    }
    const file = await files.get(req.caller.tenant, id);
    if (!file) throw fileNotFound(id);
    res.json(fileObject(file));
  });

  router.get('/files/:id/content', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const made = batchFileOf(id);
    let body: AsyncIterable<Buffer | string>;
    if (made) {
      const view = await batchOfFile(batches, req.caller.tenant, made.batchHex);
      if (!view || !hasFile(view, id)) throw fileNotFound(id);
      body = (async function* () {
        for await (const line of batches.fileLines(view, made.which)) yield `${line}\n`;
      })();
    } else {
      const file = await files.get(req.caller.tenant, id);
      if (!file) throw fileNotFound(id);
      res.setHeader('Content-Length', String(file.bytes));
      body = files.content(file);
    }
    res.status(200).type('application/jsonl');
    // Once the body has started, a failure can only cut it short: the client sees a truncated download, never a whole-looking one.
    await pipeline(Readable.from(body), res).catch((error: unknown) => {
      if (!res.headersSent) throw error;
      res.destroy();
    });
  });

  router.delete('/files/:id', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    if (batchFileOf(id))
      throw new ProblemError('OB_ERR_INVALID_REQUEST', "a batch's output and error files live as long as its job; delete the job instead");
    if (!(await files.delete(req.caller.tenant, id))) throw fileNotFound(id);
    res.json({ id, object: 'file', deleted: true });
  });

  router.post('/batches', jsonBody(config.MAX_BODY_BYTES), async (req: Request, res: Response) => {
    const keyHash = idempotencyKeyHash(req);
    const view = await batches.create({
      tenant: req.caller.tenant,
      body: req.body,
      idempotency: keyHash ? { keyHash, bodyHash: () => req.bodyHash ?? '' } : undefined,
    });
    if (view.job) res.locals.jobId = view.job.id;
    res.status(200).json(batchObject(view));
  });

  router.get('/batches', async (req: Request, res: Response) => {
    const query = req.query as Record<string, string | undefined>;
    const limit = integerParam(query.limit, 'limit', 1, 100, 20);
    const page = await batches.list(req.caller.tenant, query.after ?? null, limit);
    res.json(listOf(page.batches.map(batchObject), page.hasMore));
  });

  router.get('/batches/:id', async (req: Request, res: Response) => {
    const id = String(req.params.id);
    const view = await batches.get(req.caller.tenant, id);
    if (!view) throw batchNotFound(id);
    res.json(batchObject(view));
  });

  router.post('/batches/:id/cancel', async (req: Request, res: Response) => {
    res.json(batchObject(await batches.cancel(req.caller.tenant, String(req.params.id))));
  });

  return router;
}

function listOf(data: Record<string, unknown>[], hasMore: boolean): Record<string, unknown> {
  const first = data[0];
  const last = data[data.length - 1];
  return { object: 'list', data, first_id: first ? first.id : null, last_id: last ? last.id : null, has_more: hasMore };
}

async function batchOfFile(batches: BatchService, tenant: string, hex: string): Promise<BatchView | null> {
  return (await batches.get(tenant, batchIdOfHex(hex, false))) ?? (await batches.get(tenant, batchIdOfHex(hex, true)));
}

/** Whether the batch's object names this output or error file now (it names them once the batch has finished). */
function hasFile(view: BatchView, id: string): boolean {
  const described = batchObject(view);
  return described.output_file_id === id || described.error_file_id === id;
}

function fileNotFound(id: string): ProblemError {
  return new ProblemError('OB_ERR_NOT_FOUND', `no file with id '${id.slice(0, 80)}'`);
}

function invalidParam(field: string, message: string): ProblemError {
  return new ProblemError('OB_ERR_INVALID_REQUEST', `'${field}' ${message}`, { errors: [{ field, message }] });
}

function integerParam(raw: string | undefined, field: string, min: number, max: number, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) throw invalidParam(field, `must be an integer from ${min} to ${max}`);
  return value;
}

/**
 * Reads a multipart upload (`file`, `purpose`, optionally `expires_after[anchor]` and
 * `expires_after[seconds]`), streaming the file into the store as it arrives.
 */
function receiveFile(req: Request, files: FileStore, config: BatchApiRouteDeps['config']): Promise<StoredFile> {
  if (!req.is('multipart/form-data'))
    throw new ProblemError('OB_ERR_UNSUPPORTED_MEDIA_TYPE', 'send the file as multipart/form-data with the fields file and purpose');
  const fields = new Map<string, string>();
  const parser = busboy({
    headers: req.headers,
    limits: { files: 1, fields: 8, fieldSize: 1024, fileSize: config.FILES_MAX_BYTES + 1, parts: 10 },
  });
  let upload: ReturnType<FileStore['upload']> | null = null;
  let refuse: (error: unknown) => void = () => undefined;
  const refused = new Promise<never>((_resolve, reject) => {
    refuse = reject;
  });
  refused.catch(() => undefined); // awaited only while the parse is; a late refusal is the upload's own
  const parsed = new Promise<void>((resolve, reject) => {
    parser.on('close', resolve);
    parser.on('error', (error: Error) =>
      reject(new ProblemError('OB_ERR_INVALID_REQUEST', `the multipart body is malformed: ${error.message.slice(0, 200)}`)),
    );
    parser.on('filesLimit', () => reject(invalidParam('file', 'one file per upload')));
    parser.on('fieldsLimit', () => reject(new ProblemError('OB_ERR_INVALID_REQUEST', 'too many form fields')));
    parser.on('partsLimit', () => reject(new ProblemError('OB_ERR_INVALID_REQUEST', 'too many form parts')));
  });
  parser.on('field', (name: string, value: string) => fields.set(name, value));
  const described = async (): Promise<{ purpose: string; ttlSeconds: number }> => {
    await parsed;
    const purpose = fields.get('purpose');
    if (purpose === undefined) throw invalidParam('purpose', 'is required');
    if (!PURPOSES.includes(purpose)) throw invalidParam('purpose', `must be one of: ${PURPOSES.join(', ')}`);
    const anchor = fields.get('expires_after[anchor]');
    if (anchor !== undefined && anchor !== 'created_at') throw invalidParam('expires_after[anchor]', 'must be "created_at"');
    const seconds = fields.get('expires_after[seconds]');
    if (seconds === undefined) return { purpose, ttlSeconds: config.FILES_TTL_SECONDS };
    const ttl = Number(seconds);
    if (!/^\d+$/.test(seconds) || ttl < FILE_EXPIRY_SECONDS.min || ttl > FILE_EXPIRY_SECONDS.max)
      throw invalidParam('expires_after[seconds]', `must be an integer from ${FILE_EXPIRY_SECONDS.min} to ${FILE_EXPIRY_SECONDS.max}`);
    return { purpose, ttlSeconds: ttl };
  };
  parser.on('file', (name: string, stream: Readable, info: { filename: string }) => {
    if (name !== 'file' || upload) {
      stream.resume();
      return;
    }
    upload = files.upload(req.caller.tenant, (info.filename || 'upload.jsonl').slice(0, 255), stream, described);
    // A refused upload answers at once (the parser may never finish a file nobody reads); the rest of the body is dropped.
    upload.catch((error: unknown) => {
      stream.resume();
      req.unpipe(parser);
      req.resume();
      refuse(error);
    });
  });
  req.pipe(parser);
  return (async () => {
    // A refused upload (a second file, a malformed body) removes what it wrote: its described() throws.
    await Promise.race([parsed, refused]);
    if (!upload) throw invalidParam('file', 'is required');
    return upload;
  })();
}

// ---------------------------------------------------------------------------------------------
// OpenAPI: the fragment of these routes (api/src/openapi.ts merges it).

const FILE_OBJECT = {
  type: 'object',
  required: ['id', 'object', 'bytes', 'created_at', 'filename', 'purpose', 'status'],
  properties: {
    id: { type: 'string', examples: ['file-0c5e1a0d2b7f4c1e9a3b5d7f9e1c3a5b', 'file-output-…', 'file-errors-…'] },
    object: { const: 'file' },
    bytes: { type: 'integer' },
    created_at: { type: 'integer', description: 'Unix seconds' },
    expires_at: {
      type: 'integer',
      description: 'Unix seconds: FILES_TTL_SECONDS (or expires_after) for an upload, the job’s TTL for a batch’s file',
    },
    filename: { type: 'string' },
    purpose: { enum: ['batch', 'batch_output'] },
    status: { const: 'processed' },
    status_details: { type: 'null' },
  },
} as const;

const BATCH_OBJECT = {
  type: 'object',
  required: ['id', 'object', 'endpoint', 'input_file_id', 'completion_window', 'status', 'created_at', 'request_counts'],
  properties: {
    id: { type: 'string', description: '`batch_` and the id of the job that runs it (a batch that ran none: 32 hex digits)' },
    object: { const: 'batch' },
    endpoint: { type: 'string', examples: ['/v1/embeddings', '/v1/models/iris/predict'] },
    model: { type: ['string', 'null'] },
    errors: {
      oneOf: [
        { type: 'null' },
        {
          type: 'object',
          properties: {
            object: { const: 'list' },
            data: {
              type: 'array',
              items: {
                type: 'object',
                properties: {
                  code: {
                    enum: [
                      'invalid_json_line',
                      'invalid_request',
                      'duplicate_custom_id',
                      'mismatched_endpoint',
                      'mixed_models',
                      'too_many_requests',
                      'empty_file',
                    ],
                  },
                  message: { type: 'string' },
                  param: { type: ['string', 'null'] },
                  line: { type: ['integer', 'null'] },
                },
              },
            },
          },
        },
      ],
    },
    input_file_id: { type: 'string' },
    completion_window: { const: '24h' },
    status: { enum: ['failed', 'in_progress', 'finalizing', 'completed', 'cancelled'] },
    output_file_id: { type: ['string', 'null'] },
    error_file_id: { type: ['string', 'null'] },
    created_at: { type: 'integer' },
    in_progress_at: { type: ['integer', 'null'] },
    expires_at: { type: 'integer' },
    finalizing_at: { type: ['integer', 'null'] },
    completed_at: { type: ['integer', 'null'] },
    failed_at: { type: ['integer', 'null'] },
    expired_at: { type: 'null', description: 'Never set: a batch is never dropped for taking longer than its window' },
    cancelling_at: { type: ['integer', 'null'] },
    cancelled_at: { type: ['integer', 'null'] },
    request_counts: {
      type: 'object',
      properties: { total: { type: 'integer' }, completed: { type: 'integer' }, failed: { type: 'integer' } },
    },
    metadata: { type: ['object', 'null'], additionalProperties: { type: 'string', maxLength: 512 } },
  },
} as const;

function listSchema(item: object): object {
  return {
    type: 'object',
    required: ['object', 'data', 'first_id', 'last_id', 'has_more'],
    properties: {
      object: { const: 'list' },
      data: { type: 'array', items: item },
      first_id: { type: ['string', 'null'] },
      last_id: { type: ['string', 'null'] },
      has_more: { type: 'boolean' },
    },
  };
}

function json(description: string, schema: object): Record<string, unknown> {
  return { description, content: { 'application/json': { schema } } };
}

function errors(...statuses: string[]): Record<string, unknown> {
  return Object.fromEntries(['401', '403', '429', ...statuses].map((s) => [s, COMPAT_ERROR_RESPONSE]));
}

const ID = (what: string) => ({ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: what });
const TAGS = ['openai'];

export function batchApiPaths(): Paths {
  return {
    '/v1/files': {
      post: {
        operationId: 'uploadFile',
        summary: "Uploads a batch's input file (OpenAI's Files API), streamed into Redis",
        tags: TAGS,
        requestBody: {
          required: true,
          content: {
            'multipart/form-data': {
              schema: {
                type: 'object',
                required: ['file', 'purpose'],
                properties: {
                  file: { type: 'string', format: 'binary', description: 'JSONL of request lines; at most FILES_MAX_BYTES' },
                  purpose: { const: 'batch' },
                  'expires_after[anchor]': { const: 'created_at' },
                  'expires_after[seconds]': { type: 'integer', minimum: 3600, maximum: 2_592_000 },
                },
              },
            },
          },
        },
        responses: { '200': json('The stored file', FILE_OBJECT), ...errors('400', '415', '500', '503', '507') },
      },
      get: {
        operationId: 'listFiles',
        summary: "The tenant's uploaded files",
        tags: TAGS,
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 10_000, default: 10_000 } },
          { name: 'after', in: 'query', schema: { type: 'string' } },
          { name: 'order', in: 'query', schema: { enum: ['asc', 'desc'], default: 'desc' } },
          { name: 'purpose', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': json('A page of files', listSchema(FILE_OBJECT)), ...errors('400') },
      },
    },
    '/v1/files/{id}': {
      get: {
        operationId: 'getFile',
        summary: "An uploaded file, or a batch's output or error file",
        tags: TAGS,
        parameters: [ID('file id')],
        responses: { '200': json('The file', FILE_OBJECT), ...errors('404') },
      },
      delete: {
        operationId: 'deleteFile',
        summary: 'Deletes an uploaded file (a batch already created from it is not affected)',
        tags: TAGS,
        parameters: [ID('file id')],
        responses: {
          '200': json('Deleted', {
            type: 'object',
            properties: { id: { type: 'string' }, object: { const: 'file' }, deleted: { const: true } },
          }),
          ...errors('400', '404'),
        },
      },
    },
    '/v1/files/{id}/content': {
      get: {
        operationId: 'getFileContent',
        summary: "A file's bytes: an upload as sent, or a batch's output or error lines in input order",
        tags: TAGS,
        parameters: [ID('file id')],
        responses: {
          '200': { description: 'JSONL', content: { 'application/jsonl': { schema: { type: 'string' } } } },
          ...errors('404'),
        },
      },
    },
    '/v1/batches': {
      post: {
        operationId: 'createBatch',
        summary: "Validates a file of requests and runs them as one job (OpenAI's Batch API)",
        description:
          'Every line is checked first (JSON, a unique custom_id of at most 256 characters, method POST, url equal to `endpoint`, at ' +
          'most BATCH_MAX_REQUESTS lines); a file that fails answers a batch `failed` with `errors`, and nothing runs. A body the ' +
          'endpoint refuses (a bad row) goes to the error file; the others are rows of one job. Idempotency-Key is honoured.',
        tags: TAGS,
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['input_file_id', 'endpoint', 'completion_window'],
                additionalProperties: false,
                properties: {
                  input_file_id: { type: 'string' },
                  endpoint: {
                    type: 'string',
                    examples: ['/v1/embeddings', '/v1/models/iris/predict', '/v1/models/iris/versions/2/predict'],
                  },
                  completion_window: { const: '24h' },
                  metadata: { type: 'object', maxProperties: 16, additionalProperties: { type: 'string', maxLength: 512 } },
                },
              },
            },
          },
        },
        responses: { '200': json('The batch', BATCH_OBJECT), ...errors('400', '404', '409', '415', '500', '503', '507') },
      },
      get: {
        operationId: 'listBatches',
        summary: "The tenant's batches, newest first",
        tags: TAGS,
        parameters: [
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          { name: 'after', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': json('A page of batches', listSchema(BATCH_OBJECT)), ...errors('400') },
      },
    },
    '/v1/batches/{id}': {
      get: {
        operationId: 'getBatch',
        summary: 'A batch: its status and counts are its job’s',
        tags: TAGS,
        parameters: [ID('batch id')],
        responses: { '200': json('The batch', BATCH_OBJECT), ...errors('404') },
      },
    },
    '/v1/batches/{id}/cancel': {
      post: {
        operationId: 'cancelBatch',
        summary: "Cancels a batch's job; what ran is in its output and error files",
        tags: TAGS,
        parameters: [ID('batch id')],
        responses: { '200': json('The cancelled batch', BATCH_OBJECT), ...errors('404', '409', '507') },
      },
    },
  };
}
