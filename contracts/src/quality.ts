/**
 * The quality of predictions against ground truth, as the API answers it (GET
 * /v1/batch-result/{id}/quality, GET /v1/models/{name}/quality): computed from additive counters
 * (shared/src/quality/quality-counters.ts).
 */
export type QualityKind = 'classification' | 'regression';

/**
 * How predictions were made, as quality is split: by a rollout's default or canary, by a version
 * the client named (`pinned`), or by a shadow version re-running a sample of the default's chunks.
 */
export type QualityArm = 'default' | 'canary' | 'pinned' | 'shadow';

export interface ClassQuality {
  label: string;
  precision: number | null;
  recall: number | null;
  f1: number | null;
  /** Labelled rows of this true class. */
  support: number;
}

export interface CalibrationBin {
  from: number;
  to: number;
  rows: number;
  /** Mean confidence of the bin's rows. */
  confidence: number;
  /** Share of them predicted right. */
  accuracy: number;
}

export interface ClassificationQuality {
  kind: 'classification';
  /** Rows predicted in the window (failed rows left out) and rows of them labelled. */
  predictedRows: number;
  labelledRows: number;
  labelledShare: number | null;
  /** Realised, from labelled rows; null without labels. */
  accuracy: number | null;
  macroF1: number | null;
  weightedF1: number | null;
  logLoss: number | null;
  brier: number | null;
  classes: ClassQuality[];
  /** Rows: true class, columns: predicted class, in `labels` order. */
  confusion: number[][];
  /** Mean confidence of the labelled rows: what a calibrated model's accuracy on them would be. */
  meanConfidence: number | null;
  /** Expected calibration error over the labelled rows (10 equal-width confidence bins). */
  calibrationError: number | null;
  calibration: CalibrationBin[];
  /** From confidences alone, over every predicted row (confidence-based performance estimation). */
  estimated: EstimatedQuality | null;
}

export interface EstimatedQuality {
  accuracy: number;
  macroF1: number | null;
  classes: { label: string; precision: number | null; recall: number | null; f1: number | null }[];
  /**
   * Realised accuracy minus the mean confidence of the same labelled rows: near 0 when the
   * confidences are calibrated (and the estimate can be trusted); null without labels.
   */
  calibrationGap: number | null;
}

export interface RegressionQuality {
  kind: 'regression';
  predictedRows: number;
  labelledRows: number;
  labelledShare: number | null;
  mae: number | null;
  rmse: number | null;
  /** null with fewer than 2 labels or true values that do not vary. */
  r2: number | null;
  /** Mean of prediction − truth. */
  bias: number | null;
  /** Mean prediction over every predicted row (what can be watched before labels come). */
  meanPrediction: number | null;
}

export type QualityMetrics = ClassificationQuality | RegressionQuality;

/** What a labels request did (POST /v1/batch-result/{id}/labels, POST /v1/labels). */
export interface LabelOutcome {
  /** Labels given to rows that had none. */
  added: number;
  /** Labels that replaced a different one. */
  replaced: number;
  /** Labels the rows already had. */
  unchanged: number;
  /** Labels of rows that failed (no prediction to judge): kept out of every metric. */
  notPredicted: number;
}

/** The answer of a labels request: what it did, how many labels it held, and the job(s) they went to. */
export type LabelsAnswer = LabelOutcome & { labels: number; jobId?: string; jobs?: string[] };

/** GET /v1/batch-result/{id}/quality. */
export type JobQuality = {
  jobId: string;
  model: string;
  version: string;
  arm: QualityArm;
  /** The version's figures on its evaluation set (its manifest's `metrics.reference`), or null. */
  reference: Record<string, unknown> | null;
} & QualityMetrics;

/** One version and arm of GET /v1/models/{name}/quality: totals over the window, and a summary per bucket. */
export type QualitySeries = {
  version: string;
  arm: QualityArm;
  reference: Record<string, unknown> | null;
  buckets: ({ from: string; to: string } & Record<string, number | string | null>)[];
} & QualityMetrics;

/** GET /v1/models/{name}/quality. */
export interface ModelQuality {
  model: string;
  from: string;
  to: string;
  bucket: 'hour' | 'day';
  series: QualitySeries[];
}
