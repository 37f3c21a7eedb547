import { createHash } from 'node:crypto';
import type { ModelEntry } from '../model-repository';
import type { Rollout, RolloutAction, RolloutSpec, RouteArm } from '@onnx-batch/contracts';

export function emptyRollout(model: string): Rollout {
  return { model, default: null, canary: null, shadow: null, autoRollback: null, previousDefault: null, revision: 0, updatedAt: '' };
}

/** The share (0 ≤ x < 100) a key falls in: the first 32 bits of its SHA-256, spread over [0, 100). */
export function percentile(key: string): number {
  return (createHash('sha256').update(key).digest().readUInt32BE(0) / 0x1_0000_0000) * 100;
}

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

/**
 * The rollout after `action`, from `current`. `servingDefault` is the version that serves jobs
 * naming none now (the rollout's default, or the repository's). The previous default is the
 * default when the current experiment (canary, shadow) or promotion began, so a rollback undoes
 * exactly that: a misbehaving canary is dropped and the default kept; a promotion is reverted.
 */
export function nextRollout(
  current: Rollout,
  action: RolloutAction,
  servingDefault: string,
  spec: RolloutSpec = {},
  now = new Date(),
): Rollout {
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
      const previousDefault =
        newDefault !== servingDefault ? servingDefault : next.canary || next.shadow ? servingDefault : current.previousDefault;
      return { ...next, previousDefault };
    }
    case 'promote': {
      if (!current.canary) throw new RolloutError('there is no canary to promote');
      return {
        ...base,
        default: current.canary.version,
        canary: null,
        shadow: current.shadow,
        autoRollback: current.autoRollback,
        previousDefault: servingDefault,
      };
    }
    case 'rollback':
    case 'auto-rollback':
      return {
        ...base,
        default: current.previousDefault ?? current.default,
        canary: null,
        shadow: null,
        autoRollback: current.autoRollback,
        previousDefault: null,
      };
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

/** A change whose If-Match names none of the rollout's current revision: someone changed it since it was read. */
export class RolloutPreconditionError extends Error {
  override name = 'RolloutPreconditionError';
  constructor(readonly revision: number) {
    super(`the rollout changed since it was read: it is at revision ${revision} now (ETag "${revision}"); read it again, then decide`);
  }
}

/** The version serving jobs that name none: the rollout's default while the repository has it, else the repository's. */
export function servingDefault(entry: ModelEntry, rollout: Rollout): string {
  const pinned = rollout.default;
  return pinned !== null && entry.versions.some((v) => v.manifest.version === pinned) ? pinned : entry.defaultVersion;
}
