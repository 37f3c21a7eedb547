import { createHash } from 'node:crypto';
import type { ModelEntry } from '../model-repository';

/**
 * A model's rollout: which version serves jobs that name none (`default`), which one takes a
 * share of those jobs (`canary`), which one runs a sample of the default's rows off the result
 * path to be compared (`shadow`), and the guard that rolls back by itself. Stored in Redis (see
 * rollout-store.ts) so every API replica and worker sees the same one.
 */
export interface Rollout {
  model: string;
  /** The version of jobs that name none; null: the repository's default (the highest, or the pinned one). */
  default: string | null;
  canary: { version: string; percent: number } | null;
  shadow: { version: string; percent: number } | null;
  autoRollback: AutoRollbackRule | null;
  /** The default a rollback returns to: the default when the current experiment or promotion began. */
  previousDefault: string | null;
  /** Increases with every change; canary and shadow statistics are kept per revision. */
  revision: number;
  updatedAt: string;
}

export interface AutoRollbackRule {
  /** Roll back when the canary's failed-row rate exceeds this (0–1). */
  maxFailedRowRate?: number;
  /** Roll back when the shadow's label agreement with the default falls below this (0–1). */
  minAgreement?: number;
  /** Rows the canary (or shadow) must have run before the rule judges it. */
  minRows: number;
}

/** What a client sends to `PUT /v1/models/:name/rollout`. */
export interface RolloutSpec {
  default?: string | null;
  canary?: { version: string; percent: number } | null;
  shadow?: { version: string; percent: number } | null;
  autoRollback?: AutoRollbackRule | null;
}

const VERSION = { type: 'string', pattern: '^[0-9]{1,9}$' } as const;
const SHARE = {
  type: 'object',
  required: ['version', 'percent'],
  additionalProperties: false,
  properties: { version: VERSION, percent: { type: 'number', minimum: 0, maximum: 100 } },
} as const;

/** The body of `PUT /v1/models/:name/rollout` (versions are strings of digits, as in the repository). */
export const ROLLOUT_SPEC_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    default: { anyOf: [VERSION, { type: 'null' }], description: 'Version of jobs that name none; null: the repository default.' },
    canary: { anyOf: [SHARE, { type: 'null' }], description: 'A version taking `percent` of the jobs that name no version (chosen by a hash of the job id).' },
    shadow: { anyOf: [SHARE, { type: 'null' }], description: 'A version that also runs `percent` of the default-served chunks, off the result path, to be compared.' },
    autoRollback: {
      anyOf: [
        {
          type: 'object',
          required: ['minRows'],
          additionalProperties: false,
          properties: {
            maxFailedRowRate: { type: 'number', minimum: 0, maximum: 1 },
            minAgreement: { type: 'number', minimum: 0, maximum: 1 },
            minRows: { type: 'integer', minimum: 1 },
          },
        },
        { type: 'null' },
      ],
      description: 'Roll back by itself when the canary or shadow breaches it (after `minRows` rows).',
    },
  },
} as const;

export function emptyRollout(model: string): Rollout {
  return { model, default: null, canary: null, shadow: null, autoRollback: null, previousDefault: null, revision: 0, updatedAt: '' };
}

/** The share (0 ≤ x < 100) a key falls in: the first 32 bits of its SHA-256, spread over [0, 100). */
export function percentile(key: string): number {
  return (createHash('sha256').update(key).digest().readUInt32BE(0) / 0x1_0000_0000) * 100;
}

export type RouteArm = 'default' | 'canary' | 'pinned';

/**
 * The version a job runs on. A job that names a version is never rerouted; otherwise a canary
 * takes the jobs whose id falls in its percent (the same job always lands the same way).
 */
export function routeJob(rollout: Rollout, jobId: string, defaultVersion: string, requested?: string): { version: string; arm: RouteArm } {
  if (requested !== undefined) return { version: requested, arm: 'pinned' };
  if (rollout.canary && percentile(jobId) < rollout.canary.percent) return { version: rollout.canary.version, arm: 'canary' };
  return { version: defaultVersion, arm: 'default' };
}

/** Whether a chunk of a default-served job also runs on the shadow version. */
export function inShadowSample(rollout: Rollout, jobId: string, chunk: number): boolean {
  return rollout.shadow !== null && percentile(`${jobId}:${chunk}`) < rollout.shadow.percent;
}

export type RolloutAction = 'put' | 'promote' | 'rollback' | 'auto-rollback';

/**
 * The rollout after `action`, from `current`. `servingDefault` is the version that serves jobs
 * naming none now (the rollout's default, or the repository's). The previous default is the
 * default when the current experiment (canary, shadow) or promotion began, so a rollback undoes
 * exactly that: a misbehaving canary is dropped and the default kept; a promotion is reverted.
 */
export function nextRollout(current: Rollout, action: RolloutAction, servingDefault: string, spec: RolloutSpec = {}, now = new Date()): Rollout {
  const base = { model: current.model, revision: current.revision + 1, updatedAt: now.toISOString() };
  switch (action) {
    case 'put': {
      const next = {
        ...base,
        default: spec.default ?? null,
        canary: spec.canary ?? null,
        shadow: spec.shadow ?? null,
        autoRollback: spec.autoRollback ?? null,
      };
      const newDefault = next.default ?? servingDefault;
      const previousDefault = newDefault !== servingDefault ? servingDefault : next.canary || next.shadow ? servingDefault : current.previousDefault;
      return { ...next, previousDefault };
    }
    case 'promote': {
      if (!current.canary) throw new RolloutError('there is no canary to promote');
      return { ...base, default: current.canary.version, canary: null, shadow: current.shadow, autoRollback: current.autoRollback, previousDefault: servingDefault };
    }
    case 'rollback':
    case 'auto-rollback':
      return { ...base, default: current.previousDefault ?? current.default, canary: null, shadow: null, autoRollback: current.autoRollback, previousDefault: null };
  }
}

/** A rollout change that cannot be made (nothing to promote, a version that does not fit). */
export class RolloutError extends Error {
  override name = 'RolloutError';
  constructor(
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The version serving jobs that name none: the rollout's default while the repository has it, else the repository's. */
export function servingDefault(entry: ModelEntry, rollout: Rollout): string {
  const pinned = rollout.default;
  return pinned !== null && entry.versions.some((v) => v.manifest.version === pinned) ? pinned : entry.defaultVersion;
}
