import type { DecodedChunk } from '../codec/chunk-codec';
import { storageOf } from '../codec/chunk-codec';
import type { OutputData } from '../codec/result-format';
import { type FeatureSpec, type FeatureType, type ModelManifest, featureSize, rowElements } from '@onnx-batch/contracts';
import type { Vocabulary } from './vocabulary';

/**
 * What is measured of a feature, per row:
 * - `value`: a number or integer feature's value, as the codec stores it;
 * - `length`: a string's length in UTF-16 code units (JavaScript's `length`);
 * - `oov`: the share of a string's tokens not in the model's vocabulary (0 when it has no token);
 * - `mean`, `std`: mean and population standard deviation of a tensor's values as sent
 *   (for an image: brightness and contrast).
 */
export type Measure = 'value' | 'length' | 'oov' | 'mean' | 'std';

/** One statistic of a manifest and where its feature's values sit in a decoded chunk. */
export interface StatisticPlan {
  /** `<feature>` for `value`, else `<feature>.<measure>`: what the drift API reports. */
  name: string;
  feature: string;
  measure: Measure;
  /** The graph input (chunk section) holding the feature. */
  input: string;
  /** Elements of that input per row, and the feature's first element and element count in a row. */
  perRow: number;
  offset: number;
  size: number;
  /** Measured values are float32 (compare them with binEdges(edges, true)). */
  float32: boolean;
  /** For `oov`: the vocabulary and tokenisation. */
  vocabulary?: Vocabulary;
}

/** The statistic of a model's predictions: argmax label index, or the first target's value. */
export interface PredictionPlan {
  kind: 'label' | 'value';
  output: string;
  /** For `label`: the manifest's labels. */
  labels?: readonly string[];
  /** For `value`: the output is float32 (compare with binEdges(edges, true)). */
  float32: boolean;
}

/** The measures of each feature type, in the order they are listed. */
export function measuresOf(type: FeatureType, hasVocabulary: boolean): Measure[] {
  switch (type) {
    case 'number':
    case 'integer':
      return ['value'];
    case 'string':
      return hasVocabulary ? ['length', 'oov'] : ['length'];
    case 'tensor':
      return ['mean', 'std'];
  }
}

export function statisticName(feature: string, measure: Measure): string {
  return measure === 'value' ? feature : `${feature}.${measure}`;
}

/**
 * The statistics a manifest has, in feature order: one per measure of each feature (`oov` only
 * with a vocabulary), each located in the chunk sections the codec writes.
 */
export function statisticsPlan(manifest: ModelManifest, vocabulary?: Vocabulary): StatisticPlan[] {
  const features = new Map(manifest.features.map((f) => [f.name, f]));
  const located = new Map<string, Omit<StatisticPlan, 'name' | 'feature' | 'measure'>>();
  for (const input of manifest.inputs) {
    const perRow = rowElements(input.shape);
    const float32 = storageOf(input, features) === 'float32';
    let offset = 0;
    for (const name of input.features) {
      const feature = features.get(name) as FeatureSpec;
      const size = featureSize(feature);
      located.set(name, { input: input.name, perRow, offset, size, float32 });
      offset += size;
    }
  }
  const plan: StatisticPlan[] = [];
  for (const feature of manifest.features) {
    const where = located.get(feature.name);
    if (!where) throw new Error(`feature ${feature.name} feeds no input`);
    for (const measure of measuresOf(feature.type, vocabulary !== undefined)) {
      plan.push({
        name: statisticName(feature.name, measure),
        feature: feature.name,
        measure,
        ...where,
        float32: measure === 'value' && where.float32,
        ...(measure === 'oov' ? { vocabulary } : {}),
      });
    }
  }
  return plan;
}

type NumericSection = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Which rows the dear `oov` measure is taken of: rows first, first + every, … (the others are NaN). */
export interface OovSample {
  every: number;
  first: number;
}

/**
 * Per statistic of the plan, one value per row of a decoded chunk. Runs on every chunk a
 * worker processes: plain loops over the typed arrays, one Float64Array per statistic. With
 * `oovSample`, `oov` (which tokenizes every text) is measured on those rows only, NaN elsewhere.
 */
export function measureChunk(plan: readonly StatisticPlan[], chunk: DecodedChunk, oovSample?: OovSample): Float64Array[] {
  const rows = chunk.rows;
  const out = new Array<Float64Array>(plan.length);
  for (let s = 0; s < plan.length; s++) {
    const entry = plan[s] as StatisticPlan;
    const section = chunk.inputs.get(entry.input);
    if (section === undefined) throw new Error(`chunk has no data for input ${entry.input}`);
    const values = new Float64Array(rows);
    const { perRow, offset, size } = entry;
    switch (entry.measure) {
      case 'value': {
        const data = section as NumericSection;
        for (let r = 0, i = offset; r < rows; r++, i += perRow) values[r] = data[i] as number;
        break;
      }
      case 'length': {
        const data = section as string[];
        for (let r = 0, i = offset; r < rows; r++, i += perRow) values[r] = (data[i] as string).length;
        break;
      }
      case 'oov': {
        const data = section as string[];
        const vocabulary = entry.vocabulary;
        if (!vocabulary) throw new Error(`statistic ${entry.name} needs a vocabulary`);
        const every = oovSample?.every ?? 1;
        const first = oovSample?.first ?? 0;
        if (every > 1) values.fill(Number.NaN);
        for (let r = first, i = offset + first * perRow; r < rows; r += every, i += every * perRow)
          values[r] = vocabulary.oovShare(data[i] as string);
        break;
      }
      case 'mean':
      case 'std': {
        // mean and std of one feature (listed together) come from one pass over its values
        const next = plan[s + 1];
        const both = entry.measure === 'mean' && next?.measure === 'std' && next.input === entry.input && next.offset === offset;
        const deviations = both ? new Float64Array(rows) : null;
        const data = section as NumericSection;
        for (let r = 0, start = offset; r < rows; r++, start += perRow) {
          // sums of values shifted by the row's first one: exact for bytes, stable for floats
          const shift = data[start] as number;
          let sum = 0;
          let squares = 0;
          for (let i = start, end = start + size; i < end; i++) {
            const d = (data[i] as number) - shift;
            sum += d;
            squares += d * d;
          }
          const variance = (squares - (sum * sum) / size) / size;
          const std = variance > 0 ? Math.sqrt(variance) : 0;
          values[r] = entry.measure === 'std' ? std : shift + sum / size;
          if (deviations) deviations[r] = std;
        }
        if (deviations) {
          out[s] = values;
          out[++s] = deviations;
          continue;
        }
        break;
      }
    }
    out[s] = values;
  }
  return out;
}

/** The prediction statistic of a manifest: label index for classification, value for regression, none for tensor and embedding models. */
export function predictionPlan(manifest: ModelManifest): PredictionPlan | null {
  const result = manifest.result;
  const output = result.output ?? '';
  switch (result.kind) {
    case 'classification':
      return { kind: 'label', output, labels: result.labels ?? [], float32: false };
    case 'regression':
      return { kind: 'value', output, float32: manifest.outputs.find((o) => o.name === output)?.dtype === 'float32' };
    case 'tensor':
    case 'embedding':
      return null;
  }
}

/**
 * Per row [first, first + count) of a run's outputs: the predicted label's index (argmax of the
 * probabilities; the first of equal ones, as results name it) or the first target's value.
 */
export function predictionValues(
  manifest: ModelManifest,
  outputs: ReadonlyMap<string, OutputData>,
  first: number,
  count: number,
): Float64Array {
  const plan = predictionPlan(manifest);
  if (!plan) throw new Error(`model ${manifest.name} returns tensors: it has no prediction statistic`);
  const output = outputs.get(plan.output);
  if (!output) throw new Error(`model produced no output named ${plan.output}`);
  const rows = output.dims[0] ?? 0;
  const perRow = rows === 0 ? 0 : output.data.length / rows;
  const values = new Float64Array(count);
  if (plan.kind === 'label') {
    const data = output.data as ArrayLike<number>;
    const width = plan.labels?.length ?? 0;
    for (let r = 0; r < count; r++) {
      const base = (first + r) * perRow;
      let best = 0;
      for (let k = 1; k < width; k++) if ((data[base + k] as number) > (data[base + best] as number)) best = k;
      values[r] = best;
    }
  } else {
    for (let r = 0; r < count; r++) values[r] = Number(output.data[(first + r) * perRow]);
  }
  return values;
}
