import type { QualityGateOutcome } from './evaluation';
import type { Rollout, RolloutAuditEntry } from './rollout';

/** The sides a shadow compares: the version serving the job, and the shadow that ran the same rows. */
export type Side = 'default' | 'shadow';
/** The arms of a canary: jobs routed to the default, and those routed to the canary. */
export type Arm = 'default' | 'canary';

/** Canary and shadow statistics of one rollout revision, as `GET /v1/models/:name/rollout` reports them. */
export interface RolloutReport {
  revision: number;
  since: string;
  shadow: ShadowReport | null;
  canary: CanaryReport | null;
}

export interface ShadowReport {
  version: string;
  rowsCompared: number;
  /** Share of compared rows whose label is the same (classification); null for other tasks. */
  agreement: number | null;
  /** Mean over compared rows of the mean absolute difference of the probabilities (classification) or values (regression). */
  meanAbsDifference: number | null;
  failedRows: Record<Side, number>;
  p50MsPerRow: Record<Side, number | null>;
}

export interface CanaryReport {
  version: string;
  percent: number;
  jobs: Record<Arm, number>;
  rows: Record<Arm, number>;
  failedRowRate: Record<Arm, number | null>;
  p50MsPerRow: Record<Arm, number | null>;
  p50JobMs: Record<Arm, number | null>;
}

/** `GET /v1/models/:name/rollout` (and the answer of every change): docs/models-in-production.md. */
export interface RolloutState {
  model: string;
  /** The version serving jobs that name none now: the rollout's default, or the repository's. */
  servingDefault: string;
  rollout: Rollout;
  /** Canary and shadow statistics since the rollout last changed. */
  report: RolloutReport;
  /**
   * The quality gate's view of the canary against the serving default (null without a canary):
   * `not-gated` when the canary version has no evaluation set.
   */
  gate: QualityGateOutcome | null;
}

/** `GET /v1/models/:name/rollout/history`: every change, newest first. */
export interface RolloutHistory {
  model: string;
  entries: RolloutAuditEntry[];
}
