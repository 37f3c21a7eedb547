import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { DecryptionError } from '../domain-errors';

/**
 * Encryption at rest of chunk inputs and chunk results (AES-256-GCM). A sealed value is
 *
 *   "OBE" | version (1) | key id (4) | IV (12) | tag (16) | ciphertext
 *
 * The key id is the first 4 bytes of SHA-256(key): reading a value sealed under another key
 * says so instead of failing as a bare authentication error. The header and the value's place
 * (`<jobId>:in:<chunk>` / `<jobId>:out:<chunk>`, without the Redis prefix) are authenticated as
 * additional data, so a value cannot be moved to another job or chunk unnoticed.
 *
 * Chunk inputs start with "OBC1" and results with "{", so a sealed value is told apart from a
 * plain one by its first bytes.
 */
export const SEALED_MAGIC = Buffer.from('OBE', 'latin1');
export const SEALED_VERSION = 1;
const KEY_ID_BYTES = 4;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const HEADER_BYTES = SEALED_MAGIC.length + 1 + KEY_ID_BYTES;
const PREFIX_BYTES = HEADER_BYTES + IV_BYTES + TAG_BYTES;

/**
 * Parses ENCRYPTION_KEY: 32 bytes written as 64 hex characters or as base64 (padded or not).
 * Throws an Error saying what is wrong (never echoing the key).
 */
export function parseEncryptionKey(text: string): Buffer {
  const trimmed = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) return Buffer.from(trimmed, 'hex');
  if (/^[A-Za-z0-9+/]{43}=?$/.test(trimmed) || /^[A-Za-z0-9_-]{43}$/.test(trimmed)) {
    const key = Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64');
    if (key.length === 32) return key;
  }
  throw new Error('must be 32 bytes, written as 64 hex characters or 44 base64 characters (e.g. `openssl rand -hex 32`)');
}

/** Hex of the first 4 bytes of SHA-256(key): names a key in errors and in every sealed value. */
export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update(key).digest().subarray(0, KEY_ID_BYTES).toString('hex');
}

/** Whether a stored value starts with the sealed header. */
export function isSealed(value: Buffer): boolean {
  return (
    value.length >= HEADER_BYTES &&
    value.subarray(0, SEALED_MAGIC.length).equals(SEALED_MAGIC) &&
    value[SEALED_MAGIC.length] === SEALED_VERSION
  );
}

/** The key id a sealed value names, or null when it is not sealed. */
export function sealedKeyId(value: Buffer): string | null {
  return isSealed(value) ? value.subarray(SEALED_MAGIC.length + 1, HEADER_BYTES).toString('hex') : null;
}

/** Seals and opens values with one AES-256 key. */
export class AtRestCipher {
  readonly keyId: string;
  private readonly header: Buffer;

  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error('an AES-256 key is 32 bytes');
    this.keyId = keyIdOf(key);
    this.header = Buffer.concat([SEALED_MAGIC, Buffer.from([SEALED_VERSION]), Buffer.from(this.keyId, 'hex')]);
  }

  /** The cipher of ENCRYPTION_KEY, or null when it is not set (values are stored in clear). */
  static fromConfig(config: { readonly ENCRYPTION_KEY: string }): AtRestCipher | null {
    return config.ENCRYPTION_KEY === '' ? null : new AtRestCipher(parseEncryptionKey(config.ENCRYPTION_KEY));
  }

  /** Seals a value; `context` names its place (see the file comment). */
  seal(plain: Buffer | string, context: string): Buffer {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.concat([this.header, Buffer.from(context)]));
    const body = Buffer.concat([cipher.update(typeof plain === 'string' ? Buffer.from(plain) : plain), cipher.final()]);
    return Buffer.concat([this.header, iv, cipher.getAuthTag(), body]);
  }

  /** Opens a sealed value; throws a DecryptionError saying why it cannot. */
  open(sealed: Buffer, context: string): Buffer {
    const keyId = sealedKeyId(sealed);
    if (keyId === null) {
      throw new DecryptionError(
        `stored data for ${context} is not encrypted, but ENCRYPTION_KEY is set (was it written before encryption was turned on?)`,
      );
    }
    if (keyId !== this.keyId) {
      throw new DecryptionError(
        `stored data was encrypted with a different key (key id ${keyId}; ENCRYPTION_KEY has key id ${this.keyId})`,
      );
    }
    if (sealed.length < PREFIX_BYTES) throw new DecryptionError(`stored data for ${context} is truncated`);
    const iv = sealed.subarray(HEADER_BYTES, HEADER_BYTES + IV_BYTES);
    const tag = sealed.subarray(HEADER_BYTES + IV_BYTES, PREFIX_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.key, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.concat([this.header, Buffer.from(context)]));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(sealed.subarray(PREFIX_BYTES)), decipher.final()]);
    } catch {
      throw new DecryptionError(`stored data for ${context} failed authentication: it was altered or corrupted`);
    }
  }
}

/** Seals with `cipher`, or passes the value through when encryption is off. */
export function sealAtRest(cipher: AtRestCipher | null, plain: Buffer | string, context: string): Buffer | string {
  return cipher ? cipher.seal(plain, context) : plain;
}

/**
 * Opens a stored value with `cipher`; with encryption off, refuses a sealed value clearly
 * instead of handing ciphertext on as if it were data.
 */
export function openAtRest(cipher: AtRestCipher | null, stored: Buffer, context: string): Buffer {
  if (cipher) return cipher.open(stored, context);
  const keyId = sealedKeyId(stored);
  if (keyId !== null) throw notConfigured(keyId);
  return stored;
}

function notConfigured(keyId: string): DecryptionError {
  return new DecryptionError(`stored data is encrypted (key id ${keyId}), but ENCRYPTION_KEY is not set`);
}
