/**
 * Evaluations and the quality gate (docs/models-in-production.md#quality-gate): a candidate
 * version and the serving default run over the same labelled rows, as two ordinary jobs; the
 * report compares their metrics with a paired bootstrap confidence interval and gives a verdict,
 * which `PUT /v1/models/:name/rollout` checks before it starts a canary.
 */

/** What a gate decides from: `pass`, `fail`, or too few rows to judge (`insufficient-data`). */
export type EvaluationVerdict = 'pass' | 'fail' | 'insufficient-data';

export type EvaluationStatus = 'running' | 'completed' | 'failed';

export type ClassificationMetric = 'accuracy' | 'macroF1' | 'logLoss';
export type RegressionMetric = 'rmse' | 'mae';
export type EvaluationMetric = ClassificationMetric | RegressionMetric;

/** The metric the verdict is about: accuracy for a classifier, RMSE for a regression model. */
export const PRIMARY_METRIC = { classification: 'accuracy', regression: 'rmse' } as const;

/** One metric on both versions over the same rows. */
export interface MetricComparison {
  metric: EvaluationMetric;
  /** Which way is better for this metric. */
  better: 'higher' | 'lower';
  candidate: number | null;
  baseline: number | null;
  /** candidate − baseline. */
  difference: number | null;
  /** Paired bootstrap percentile interval of the difference (at `bootstrap.confidence`); null without rows. */
  ci: { low: number; high: number } | null;
}

/** What an evaluation reports once both of its jobs have finished. */
export interface EvaluationReport {
  kind: 'classification' | 'regression';
  /** Rows of the evaluation set. */
  rows: number;
  /** Rows predicted on both versions: every metric is over these (a row that failed on either side is left out of both). */
  comparedRows: number;
  failedRows: { candidate: number; baseline: number };
  primary: EvaluationMetric;
  /** Primary metric first. */
  metrics: MetricComparison[];
  bootstrap: {
    /** Rows are resampled with replacement, the same draw for both versions (paired), this many times. */
    resamples: number;
    /** Of the interval, e.g. 0.95. */
    confidence: number;
    /** Seed of the generator (from the evaluation id): the same evaluation always reports the same interval. */
    seed: number;
    method: 'paired-percentile';
  };
  /** The rule the verdict applied (GATE_* settings when the report was made). */
  rule: {
    /** How much worse the primary metric may be: absolute for accuracy, relative (a share of the baseline's) for RMSE. */
    allowedRegression: number;
    /** Fewest compared rows for a verdict other than `insufficient-data`. */
    minRows: number;
  };
  verdict: EvaluationVerdict;
  /** The verdict in words, with the figures. */
  reason: string;
}

/** Where an evaluation's rows came from. */
export type EvaluationSource = { kind: 'repository'; file: string; description: string | null } | { kind: 'upload'; contentType: string };

/** `GET /v1/models/:name/versions/:v/evaluations/:id` (and the answer of the POST that starts one). */
export interface Evaluation {
  id: string;
  model: string;
  /** The candidate version. */
  version: string;
  /** The version serving jobs that name none when the evaluation started. */
  baseline: string;
  source: EvaluationSource;
  rows: number;
  /** The two jobs, each pinned to its version: ordinary jobs of the tenant that started the evaluation. */
  jobs: { candidate: string; baseline: string };
  createdAt: string;
  finishedAt: string | null;
  createdBy: { tenant: string; keyId: string };
  status: EvaluationStatus;
  /** Rows done of each job while they run; null once finished. */
  progress: { candidate: { done: number; total: number }; baseline: { done: number; total: number } } | null;
  report: EvaluationReport | null;
  /** Why a failed evaluation has no report (a job failed, was cancelled, or expired before the report was made). */
  error: string | null;
  /** The model files of both versions when it started: a later change of either makes it stale for the gate. */
  fingerprints: { candidate: string; baseline: string };
}

/** `GET /v1/models/:name/versions/:v/evaluations`: newest first. */
export interface EvaluationList {
  model: string;
  version: string;
  evaluations: Evaluation[];
}

/**
 * The gate's view of a canary version against a default: `not-gated` (the version has no
 * evaluation set), `passed`, or why it does not pass.
 */
export type QualityGateState = 'not-gated' | 'passed' | 'failed' | 'insufficient-data' | 'missing' | 'running' | 'errored';

export interface QualityGateOutcome {
  /** The canary version judged, and the default it was judged against. */
  version: string;
  baseline: string;
  state: QualityGateState;
  /** `not-gated` or `passed`: a canary may start without `force`. */
  passes: boolean;
  /** The latest evaluation of the version against this default, when there is one. */
  evaluationId: string | null;
  /** Its primary metric, when it has a report. */
  primary: MetricComparison | null;
  /** Set in the audit trail when an admin started the canary with `force` past a gate that did not pass. */
  forced?: boolean;
  /** The state in words, with the figures. */
  detail: string;
}
