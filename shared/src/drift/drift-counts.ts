import type { DecodedChunk } from '../codec/chunk-codec';
import type { LoadedBaseline } from './baseline';
import { binIndex } from './bins';
import { measureChunk } from './statistics';

/**
 * Production counts of one chunk in a baseline's bins, as one flat array (what an inference
 * thread sends back, transferred): `[rows, predictions, <bins of statistic 0>, …, <prediction
 * bins>]`. `rows` is the rows measured, `predictions` those whose prediction was counted (a row
 * the model failed on is measured but has no prediction).
 */
export interface CountLayout {
  /** The Redis hash field of each entry: `rows`, `predictions`, `s:<statistic>:<bin>`, `p:<bin>`. */
  readonly fields: readonly string[];
  readonly statistics: readonly { readonly name: string; readonly offset: number; readonly bins: number }[];
  readonly prediction: { readonly offset: number; readonly bins: number } | null;
}

export const ROWS_FIELD = 'rows';
export const PREDICTIONS_FIELD = 'predictions';

export function statisticField(name: string, bin: number): string {
  return `s:${name}:${bin}`;
}

export function predictionField(bin: number): string {
  return `p:${bin}`;
}

const layouts = new WeakMap<LoadedBaseline, CountLayout>();

/** The layout of a baseline's counts (computed once per loaded baseline). */
export function countLayout(loaded: LoadedBaseline): CountLayout {
  let layout = layouts.get(loaded);
  if (layout) return layout;
  const fields = [ROWS_FIELD, PREDICTIONS_FIELD];
  const statistics = loaded.baseline.statistics.map((s) => {
    const offset = fields.length;
    const bins = s.proportions.length;
    for (let b = 0; b < bins; b++) fields.push(statisticField(s.name, b));
    return { name: s.name, offset, bins };
  });
  let prediction: CountLayout['prediction'] = null;
  if (loaded.prediction && loaded.baseline.prediction) {
    const offset = fields.length;
    const bins = loaded.baseline.prediction.proportions.length;
    for (let b = 0; b < bins; b++) fields.push(predictionField(b));
    prediction = { offset, bins };
  }
  layout = Object.freeze({ fields: Object.freeze(fields), statistics: Object.freeze(statistics), prediction });
  layouts.set(loaded, layout);
  return layout;
}

/** The result output of a chunk's rows (`rows × width`, NaN where a row failed), as inference threads keep it. */
export interface ChunkOutputs {
  data: Float32Array;
  width: number;
}

const NO_EDGES = new Float64Array(0);

/**
 * The `oov` statistic is counted on one row in OOV_EVERY (from a random row of each chunk): it
 * tokenizes whole texts, ~10 ns a character, where every other statistic costs nanoseconds a row.
 */
export const OOV_EVERY = 4;

/**
 * Counts a decoded chunk's rows into the baseline's bins: every statistic (measureChunk, the code
 * that made the baseline; `oov` on rows oovFirst, oovFirst + OOV_EVERY, …) and the prediction of
 * every row that did not fail (argmax label, or the first target's value). Runs in the inference
 * thread, on rows it has just run.
 */
export function countChunk(loaded: LoadedBaseline, chunk: DecodedChunk, outputs: ChunkOutputs | undefined, oovFirst = 0): Uint32Array {
  const layout = countLayout(loaded);
  const counts = new Uint32Array(layout.fields.length);
  counts[0] = chunk.rows;
  const values = measureChunk(loaded.plan, chunk, { every: OOV_EVERY, first: oovFirst % OOV_EVERY });
  for (let s = 0; s < layout.statistics.length; s++) {
    const edges = loaded.bins[s] as Float64Array;
    const column = values[s] as Float64Array;
    const offset = (layout.statistics[s] as CountLayout['statistics'][number]).offset;
    const sampled = loaded.plan[s]?.measure === 'oov';
    for (let r = 0; r < column.length; r++) {
      const value = column[r] as number;
      if (sampled && Number.isNaN(value)) continue; // a row the oov sample skipped
      const i = offset + binIndex(edges, value);
      counts[i] = (counts[i] as number) + 1;
    }
  }
  const prediction = loaded.prediction;
  if (!layout.prediction || !prediction || !outputs) return counts;
  const { data, width } = outputs;
  const rows = Math.min(chunk.rows, Math.floor(data.length / Math.max(width, 1)));
  const offset = layout.prediction.offset;
  let counted = 0;
  if (prediction.plan.kind === 'label') {
    const labels = layout.prediction.bins;
    for (let r = 0, base = 0; r < rows; r++, base += width) {
      if (Number.isNaN(data[base])) continue; // a failed row has no prediction
      let best = 0;
      for (let k = 1; k < labels && k < width; k++) if ((data[base + k] as number) > (data[base + best] as number)) best = k;
      counts[offset + best] = (counts[offset + best] as number) + 1;
      counted++;
    }
  } else {
    const edges = prediction.bins ?? NO_EDGES;
    for (let r = 0, base = 0; r < rows; r++, base += width) {
      const value = data[base] as number;
      if (Number.isNaN(value)) continue;
      const i = offset + binIndex(edges, value);
      counts[i] = (counts[i] as number) + 1;
      counted++;
    }
  }
  counts[1] = counted;
  return counts;
}
