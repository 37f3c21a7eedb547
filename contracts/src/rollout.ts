import type { QualityGateOutcome } from './evaluation';

/**
 * A model's rollout: which version serves jobs that name none (`default`), which one takes a
 * share of those jobs (`canary`), which one runs a sample of the default's rows off the result
 * path to be compared (`shadow`), and the guard that rolls back by itself. Stored in Redis (see
 * shared/src/rollouts/rollout-store.ts) so every API replica and worker sees the same one.
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
  /** Start the canary although its version does not pass the quality gate (needs `reason`); not part of the rollout. */
  force?: boolean;
  /** Why, recorded in the audit trail; not part of the rollout. */
  reason?: string;
}

/** Longest `reason` of a rollout change. */
export const MAX_ROLLOUT_REASON = 1000;

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
    canary: {
      anyOf: [SHARE, { type: 'null' }],
      description: 'A version taking `percent` of the jobs that name no version (chosen by a hash of the job id).',
    },
    shadow: {
      anyOf: [SHARE, { type: 'null' }],
      description: 'A version that also runs `percent` of the default-served chunks, off the result path, to be compared.',
    },
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
    force: {
      type: 'boolean',
      description:
        'Start the canary even though its version does not pass the quality gate (a failing, missing or unfinished evaluation ' +
        'against the default); needs `reason`. The audit entry records the reason and the gate\u2019s figures. Not stored in the rollout.',
    },
    reason: {
      type: 'string',
      minLength: 1,
      maxLength: MAX_ROLLOUT_REASON,
      description: 'Why the change is made, recorded in the audit trail (required with `force`). Not stored in the rollout.',
    },
  },
} as const;

export type RouteArm = 'default' | 'canary' | 'pinned';

export type RolloutAction = 'put' | 'promote' | 'rollback' | 'auto-rollback';

/** Who changed a rollout, and why when it was not a person. */
export interface RolloutActor {
  tenant: string;
  keyId: string;
}

/** One change of a rollout, as the audit stream keeps it. */
export interface RolloutAuditEntry {
  id: string;
  at: string;
  action: RolloutAction;
  actor: RolloutActor;
  from: Rollout;
  to: Rollout;
  reason: string | null;
  /** The quality gate's outcome when the change started a canary (`forced` when an admin overrode it); null otherwise. */
  gate: QualityGateOutcome | null;
}
