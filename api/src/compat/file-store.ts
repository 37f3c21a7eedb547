import { randomUUID } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';
import { ProblemError } from '@onnx-batch/contracts';
import type { JobAdmission, RedisClient, RedisKeys } from '@onnx-batch/shared';
import { pageOfIndex, type IndexPageQuery } from './index-page';

/** Bytes of one stored part: large enough that a 200 MB file is 200 keys, small enough to hold one in memory per upload. */
export const FILE_PART_BYTES = 1 << 20;

/** A file as the Batch API describes it (the `file` object). */
export interface StoredFile {
  id: string;
  tenant: string;
  filename: string;
  purpose: string;
  bytes: number;
  parts: number;
  /** Unix seconds. */
  createdAt: number;
  expiresAt: number;
}

export interface FileStoreSettings {
  ttlSeconds: number;
  maxBytes: number;
  /** How long the parts of an upload still arriving live (renewed while it arrives). */
  stagingTtlSeconds: number;
}

export interface FileListQuery extends IndexPageQuery {
  purpose: string | null;
}

const FILE_ID = /^file-[0-9a-f]{32}$/;

/** A file id as uploads are given: `file-` and 32 hex digits. */
export function isUploadedFileId(id: string): boolean {
  return FILE_ID.test(id);
}

/**
 * The files of the Batch API's `/v1/files`, kept in Redis so that every API replica serves them:
 * the bytes in parts of FILE_PART_BYTES, streamed in as they arrive (an upload is never held
 * whole), then a description hash written last, so a file is visible only once it is complete.
 * Parts of an upload still arriving live STAGING_TTL_SECONDS, renewed while it arrives; a cut
 * upload leaves nothing for long. A tenant's files are listed from a sorted set by upload time,
 * pruned of files that expired.
 */
export class FileStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly settings: FileStoreSettings,
    private readonly admission?: JobAdmission,
  ) {}

  /**
   * Stores `content` as a new file of `tenant`. `described()` is awaited once the content has ended,
   * for what came in other form fields (a multipart body may name the purpose after the file); it
   * may throw, and then nothing of the file stays.
   */
  async upload(
    tenant: string,
    filename: string,
    content: Readable,
    described: () => Promise<{ purpose: string; ttlSeconds: number }>,
  ): Promise<StoredFile> {
    await this.admission?.admit();
    const id = `file-${randomUUID().replaceAll('-', '')}`;
    let parts = 0;
    let bytes = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const stagingTtl = this.settings.stagingTtlSeconds;
    const writePart = async (part: Buffer): Promise<void> => {
      const refusal = this.admission?.refusal();
      if (refusal) throw refusal;
      await this.redis.set(this.keys.filePart(id, parts), part, 'EX', stagingTtl);
      parts++;
    };
    const renew = setInterval(() => void this.expireParts(id, parts, stagingTtl).catch(() => undefined), (stagingTtl * 1000) / 3);
    renew.unref();
    try {
      for await (const piece of content as AsyncIterable<Buffer>) {
        bytes += piece.length;
        if (bytes > this.settings.maxBytes)
          throw new ProblemError('OB_ERR_PAYLOAD_TOO_LARGE', `a file may hold at most ${this.settings.maxBytes} bytes`, {
            errors: [{ field: 'file', message: `larger than ${this.settings.maxBytes} bytes` }],
          });
        pending.push(piece);
        pendingBytes += piece.length;
        while (pendingBytes >= FILE_PART_BYTES) {
          const whole = Buffer.concat(pending);
          await writePart(whole.subarray(0, FILE_PART_BYTES));
          pending = [whole.subarray(FILE_PART_BYTES)];
          pendingBytes = whole.length - FILE_PART_BYTES;
        }
      }
      if (pendingBytes > 0) await writePart(Buffer.concat(pending));
      const { purpose, ttlSeconds } = await described();
      const createdAt = Math.floor(Date.now() / 1000);
      const file: StoredFile = { id, tenant, filename, purpose, bytes, parts, createdAt, expiresAt: createdAt + ttlSeconds };
      const commit = this.redis.multi();
      for (let n = 0; n < parts; n++) commit.expire(this.keys.filePart(id, n), ttlSeconds);
      commit.hset(this.keys.file(id), describe(file)).expire(this.keys.file(id), ttlSeconds);
      await commit.exec();
      await this.redis.zadd(this.keys.tenantFiles(tenant), Date.now(), id);
      return file;
    } catch (error) {
      await this.removeParts(id, parts).catch(() => undefined);
      throw error;
    } finally {
      clearInterval(renew);
    }
  }

  /** The tenant's file `id`, or null (another tenant's file is as unknown as none). */
  async get(tenant: string, id: string): Promise<StoredFile | null> {
    if (!isUploadedFileId(id)) return null;
    const hash = await this.redis.hgetall(this.keys.file(id));
    if (!hash.id || hash.tenant !== tenant) return null;
    return {
      id: hash.id,
      tenant: hash.tenant,
      filename: hash.filename ?? '',
      purpose: hash.purpose ?? 'batch',
      bytes: Number(hash.bytes ?? 0),
      parts: Number(hash.parts ?? 0),
      createdAt: Number(hash.createdAt ?? 0),
      expiresAt: Number(hash.expiresAt ?? 0),
    };
  }

  /** A page of the tenant's files; entries of expired files are dropped on the way. */
  async list(tenant: string, query: FileListQuery): Promise<{ files: StoredFile[]; hasMore: boolean }> {
    const keep = (file: StoredFile): boolean => query.purpose === null || file.purpose === query.purpose;
    const page = await pageOfIndex(this.redis, this.keys.tenantFiles(tenant), query, (id) => this.get(tenant, id), keep);
    return { files: page.items, hasMore: page.hasMore };
  }

  /** Deletes the tenant's file; false when there was none. */
  async delete(tenant: string, id: string): Promise<boolean> {
    const file = await this.get(tenant, id);
    if (!file) return false;
    await this.redis.del(this.keys.file(id));
    await this.removeParts(id, file.parts);
    await this.redis.zrem(this.keys.tenantFiles(tenant), id);
    return true;
  }

  /** The file's bytes, part by part (one part in memory at a time). A part gone meanwhile ends it with an error. */
  async *content(file: StoredFile): AsyncGenerator<Buffer> {
    for (let n = 0; n < file.parts; n++) {
      const part = await this.redis.getBuffer(this.keys.filePart(file.id, n));
      if (part === null) throw new ProblemError('OB_ERR_NOT_FOUND', `file '${file.id}' expired while it was being read`);
      yield part;
    }
  }

  /** The file's text, line by line (UTF-8; `\n` or `\r\n`), with the 1-based line number. */
  async *lines(file: StoredFile): AsyncGenerator<{ line: number; text: string }> {
    const decoder = new StringDecoder('utf8');
    let carry = '';
    let line = 0;
    const cut = (text: string): string => (text.endsWith('\r') ? text.slice(0, -1) : text);
    for await (const part of this.content(file)) {
      const text = carry + decoder.write(part);
      let from = 0;
      for (let at = text.indexOf('\n'); at !== -1; at = text.indexOf('\n', from)) {
        yield { line: ++line, text: cut(text.slice(from, at)) };
        from = at + 1;
      }
      carry = text.slice(from);
    }
    carry += decoder.end();
    if (carry.length > 0) yield { line: line + 1, text: cut(carry) };
  }

  private async expireParts(id: string, parts: number, ttlSeconds: number): Promise<void> {
    if (parts === 0) return;
    const renew = this.redis.pipeline();
    for (let n = 0; n < parts; n++) renew.expire(this.keys.filePart(id, n), ttlSeconds);
    await renew.exec();
  }

  private async removeParts(id: string, parts: number): Promise<void> {
    for (let n = 0; n < parts; n += 100) {
      const names = [];
      for (let k = n; k < Math.min(parts, n + 100); k++) names.push(this.keys.filePart(id, k));
      // A file's parts share its slot, so one DEL may name many of them, on a cluster too.
      if (names.length > 0) await this.redis.del(...names);
    }
  }
}

function describe(file: StoredFile): Record<string, string> {
  return {
    id: file.id,
    tenant: file.tenant,
    filename: file.filename,
    purpose: file.purpose,
    bytes: String(file.bytes),
    parts: String(file.parts),
    createdAt: String(file.createdAt),
    expiresAt: String(file.expiresAt),
  };
}

/** The `file` object of the Batch API. */
export function fileObject(
  file: Pick<StoredFile, 'id' | 'bytes' | 'createdAt' | 'expiresAt' | 'filename' | 'purpose'>,
): Record<string, unknown> {
  return {
    id: file.id,
    object: 'file',
    bytes: file.bytes,
    created_at: file.createdAt,
    expires_at: file.expiresAt,
    filename: file.filename,
    purpose: file.purpose,
    status: 'processed',
    status_details: null,
  };
}
