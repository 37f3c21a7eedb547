/** Typed view of `model.json`; see docs/model-manifest.md and manifest-schema.ts. */

export type FeatureType = 'number' | 'integer' | 'string' | 'tensor';
export type InputDtype = 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'string';
export type OutputDtype = InputDtype | 'bool';
export type ResultKind = 'classification' | 'regression' | 'tensor';

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
  metrics?: { accuracy?: number; evaluation?: string };
  training?: Record<string, unknown>;
}

/** Elements one row contributes for a feature: 1 for a scalar, product(shape) for a tensor. */
export function featureSize(feature: FeatureSpec): number {
  return feature.type === 'tensor' ? (feature.shape ?? []).reduce((a, b) => a * b, 1) : 1;
}

/** Elements per row of a graph input: product of its non-batch dimensions. */
export function rowElements(shape: readonly number[]): number {
  return shape.slice(1).reduce((a, b) => a * b, 1);
}
