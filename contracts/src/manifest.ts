/** Typed view of `model.json`; see docs/model-manifest.md and manifest-schema.ts. */

export type FeatureType = 'number' | 'integer' | 'string' | 'tensor';
export type InputDtype = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'string';
export type OutputDtype = InputDtype | 'bool';
export type ResultKind = 'classification' | 'regression' | 'tensor' | 'embedding';

export interface FeatureSpec {
  name: string;
  type: FeatureType;
  description?: string;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  shape?: number[];
  base64?: 'uint8';
}

export interface GraphInputSpec {
  name: string;
  dtype: InputDtype;
  shape: number[];
  features: string[];
}

export interface GraphOutputSpec {
  name: string;
  dtype: OutputDtype;
  shape?: number[];
}

export interface ResultSpec {
  kind: ResultKind;
  output?: string;
  labels?: string[];
  names?: string[];
  outputs?: string[];
  /** `embedding`: the length of each row's vector (the output's second dimension). */
  dimensions?: number;
}

export interface ModelManifest {
  name: string;
  version: string;
  default?: boolean;
  task: ResultKind;
  description?: string;
  chunkSize?: number;
  /**
   * Most rows dynamic batching joins into one run of this model (measured: beyond it a run is
   * slower per row); MAX_BATCH_ROWS caps it too.
   */
  maxBatchRows?: number;
  features: FeatureSpec[];
  inputs: GraphInputSpec[];
  outputs: GraphOutputSpec[];
  result: ResultSpec;
  metrics?: ModelMetrics;
  /** The version's labelled evaluation set, a file beside model.json. */
  evaluation?: EvaluationSetSpec;
  training?: Record<string, unknown>;
}

/** `metrics` of a manifest: what its training script measured, and the reference scores on its evaluation set. */
export interface ModelMetrics {
  accuracy?: number;
  /** What `accuracy` (or the regression scores in this text) was measured on, in words. */
  evaluation?: string;
  /** The version's scores on its evaluation set, as the live quality metrics compute them (written by a tool, not by hand). */
  reference?: ReferenceMetrics;
}

/**
 * `evaluation` of a manifest: a labelled evaluation set in the version's directory, NDJSON, one
 * row a line as a client submits it (features and `id`) plus its true `label` (classification)
 * or `value` (regression).
 */
export interface EvaluationSetSpec {
  /** A plain file name in the version's directory (no path separator), e.g. `evaluation.ndjson`. */
  file: string;
  /** Rows in the file (≥ 1). */
  rows: number;
  /** What the rows are and how they were chosen; whether they were part of the training data. */
  description: string;
}

/** `metrics.reference`: a classifier's or a regression model's scores on its evaluation set. */
export type ReferenceMetrics = ClassificationReference | RegressionReference;

export interface ClassificationReference {
  rows: number;
  /** Where the scores come from (the evaluation file, the tool, the runtime). */
  source: string;
  accuracy: number;
  macroF1: number;
  weightedF1: number;
  logLoss: number;
  /** Mean over rows of the sum over classes of (p − onehot)² (0–2). */
  brier: number;
  /** Mean of each row's largest probability. */
  meanConfidence: number;
  /** Expected calibration error over 10 equal-width confidence bins. */
  calibrationError: number;
  /** The non-empty confidence bins [from, to) (the last one includes 1): rows, their mean confidence and accuracy. */
  calibration: { from: number; to: number; rows: number; confidence: number; accuracy: number }[];
}

export interface RegressionReference {
  rows: number;
  source: string;
  mae: number;
  rmse: number;
  r2: number;
  /** Mean of (predicted − true). */
  bias: number;
}

/** Elements one row contributes for a feature: 1 for a scalar, product(shape) for a tensor. */
export function featureSize(feature: FeatureSpec): number {
  return feature.type === 'tensor' ? (feature.shape ?? []).reduce((a, b) => a * b, 1) : 1;
}

/** Elements per row of a graph input: product of its non-batch dimensions. */
export function rowElements(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}
