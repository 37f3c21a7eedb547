import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestHandler } from 'express';
import { ProblemError } from '@onnx-batch/contracts';
import { type Config } from '@onnx-batch/shared';

export const ROLES = ['read', 'submit', 'admin'] as const;
export type Role = (typeof ROLES)[number];
const DEFAULT_ROLES: Role[] = ['read', 'submit'];

/** A configured key: only its SHA-256 is held in memory, never the key. */
interface KeyEntry {
  tenant: string;
  sha256: Buffer;
  roles: Set<Role>;
}

export interface Caller {
  tenant: string;
  roles: ReadonlySet<Role>;
  /** Stable, non-secret id of the key (for rate limiting and logs): first 12 hex chars of its hash. */
  keyId: string;
}

declare module 'express-serve-static-core' {
  interface Request {
    caller: Caller;
  }
}

const TENANT = /^[A-Za-z0-9_.-]{1,64}$/;
const OPEN_CALLER: Caller = { tenant: 'default', roles: new Set(ROLES), keyId: 'open' };

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

function parseRoles(text: string | undefined, where: string): Set<Role> {
  if (!text) return new Set(DEFAULT_ROLES);
  const roles = text.split('+').map((r) => r.trim());
  for (const role of roles)
    if (!(ROLES as readonly string[]).includes(role)) throw new Error(`${where}: unknown role '${role}' (roles: ${ROLES.join(', ')})`);
  return new Set(roles as Role[]);
}

/**
 * The API keys: from API_KEYS (`tenant:key[:role+role]`, comma-separated) and API_KEYS_FILE
 * (hashed). Presented keys are hashed and compared in constant time against every entry.
 */
export class KeyRing {
  private constructor(private readonly entries: KeyEntry[]) {}

  static fromConfig(config: Pick<Config, 'API_KEYS' | 'API_KEYS_FILE'>): KeyRing {
    const entries: KeyEntry[] = [];
    config.API_KEYS.split(',')
      .map((s) => s.trim())
      .filter(Boolean)
      .forEach((item, i) => {
        const [tenant, key, roles, ...rest] = item.split(':');
        const where = `API_KEYS entry ${i + 1}`;
        if (!tenant || !TENANT.test(tenant) || !key || rest.length > 0)
          throw new Error(`${where}: expected tenant:key or tenant:key:role+role`);
        if (key.length < 16) throw new Error(`${where}: the key of tenant '${tenant}' is shorter than 16 characters`);
        entries.push({ tenant, sha256: sha256(key), roles: parseRoles(roles, where) });
      });
    if (config.API_KEYS_FILE) {
      const list = JSON.parse(readFileSync(config.API_KEYS_FILE, 'utf8')) as unknown;
      if (!Array.isArray(list)) throw new Error('API_KEYS_FILE: expected a JSON array of {tenant, sha256, roles}');
      list.forEach((item: { tenant?: unknown; sha256?: unknown; roles?: unknown }, i) => {
        const where = `API_KEYS_FILE entry ${i + 1}`;
        if (typeof item.tenant !== 'string' || !TENANT.test(item.tenant))
          throw new Error(`${where}: field 'tenant' must be 1–64 of [A-Za-z0-9_.-]`);
        if (typeof item.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(item.sha256))
          throw new Error(`${where}: field 'sha256' must be 64 hex characters`);
        const roles = Array.isArray(item.roles) ? item.roles.join('+') : undefined;
        entries.push({ tenant: item.tenant, sha256: Buffer.from(item.sha256, 'hex'), roles: parseRoles(roles, where) });
      });
    }
    return new KeyRing(entries);
  }

  get open(): boolean {
    return this.entries.length === 0;
  }

  /** The caller a key belongs to, or null. Every entry is compared, so timing says nothing. */
  identify(key: string): Caller | null {
    const presented = sha256(key);
    let found: KeyEntry | null = null;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.sha256, presented) && !found) found = entry;
    }
    return found ? { tenant: found.tenant, roles: found.roles, keyId: found.sha256.toString('hex').slice(0, 12) } : null;
  }
}

function presentedKey(headers: IncomingHttpHeaders): string | null {
  const apiKeyHeader = headers['x-api-key'];
  if (typeof apiKeyHeader === 'string' && apiKeyHeader) return apiKeyHeader;
  const authorization = headers.authorization;
  const match = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  return match?.[1] ?? null;
}

/** The caller a request's headers name: anyone while no key is configured, else the key's owner or null. */
export function callerOf(keys: KeyRing, headers: IncomingHttpHeaders): Caller | null {
  if (keys.open) return OPEN_CALLER;
  const key = presentedKey(headers);
  return key ? keys.identify(key) : null;
}

/** Identifies the caller (401 without a valid key when keys are configured). */
export function authenticate(keys: KeyRing): RequestHandler {
  return (req, _res, next) => {
    const caller = callerOf(keys, req.headers);
    if (!caller) {
      throw new ProblemError(
        'OB_ERR_UNAUTHORIZED',
        presentedKey(req.headers) ? 'the API key is not valid' : 'send an API key as "Authorization: Bearer <key>" or "X-API-Key: <key>"',
      );
    }
    req.caller = caller;
    next();
  };
}

/** 403 unless the caller's key has the role. */
export function requireRole(role: Role | ((method: string) => Role)): RequestHandler {
  return (req, _res, next) => {
    const needed = typeof role === 'function' ? role(req.method) : role;
    if (!req.caller.roles.has(needed)) throw new ProblemError('OB_ERR_FORBIDDEN', `this API key lacks the '${needed}' role`);
    next();
  };
}

/** Reading needs `read`; anything that creates, changes or deletes needs `submit`. */
export const roleForMethod = (method: string): Role => (method === 'GET' || method === 'HEAD' ? 'read' : 'submit');
