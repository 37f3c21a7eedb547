/**
 * Bins of a baseline statistic. Edges e0 < e1 < … < e(k-1) make k + 1 bins: (-∞, e0), [e0, e1),
 * …, [e(k-1), +∞). A value's bin is the number of edges ≤ it (NaN: bin 0).
 */

const DECILES = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];

/** An edge as stored in baseline.json: 6 significant digits (so re-runs give identical files). */
export function roundEdge(x: number): number {
  return Number(x.toPrecision(6)) + 0; // + 0 turns -0 into 0
}

/** A proportion as stored in baseline.json: 6 decimals. */
export function roundProportion(p: number): number {
  return Math.round(p * 1e6) / 1e6;
}

/** Index of the bin holding x: the number of edges ≤ x (binary search; edges ascending). */
export function binIndex(edges: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = edges.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((edges[mid] as number) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The reference deciles (q = 0.1 … 0.9) of finite values, each rounded to 6 significant digits,
 * duplicates removed: at most 9 strictly increasing edges. Quantiles are linearly interpolated
 * between order statistics (Hyndman & Fan type 7, numpy.quantile's default): with the values
 * sorted as x[0..n-1], q sits at h = (n - 1)·q and is x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋ + 1] - x[⌊h⌋]).
 */
export function decileEdges(values: ArrayLike<number>): number[] {
  const n = values.length;
  if (n === 0) throw new RangeError('decileEdges needs at least one value');
  const sorted = Float64Array.from(values);
  for (let i = 0; i < n; i++) {
    if (!Number.isFinite(sorted[i])) throw new RangeError(`decileEdges: value ${i} is ${String(sorted[i])}, not a finite number`);
  }
  sorted.sort();
  const edges: number[] = [];
  for (const q of DECILES) {
    const h = (n - 1) * q;
    const lo = Math.floor(h);
    const below = sorted[lo] as number;
    const above = sorted[Math.min(lo + 1, n - 1)] as number;
    const edge = roundEdge(below + (h - lo) * (above - below));
    if (edges.length === 0 || edge > (edges[edges.length - 1] as number)) edges.push(edge);
  }
  return edges;
}

/**
 * Edges as measured values are compared with them. Values the codec holds as float32 (iris'
 * features, a float32 model output) are compared with the float32 nearest each stored edge, so a
 * value sent as 5.1 lands in the bin starting at edge 5.1 (float32(5.1) < 5.1 in float64).
 */
export function binEdges(edges: readonly number[], float32: boolean): Float64Array {
  const out = Float64Array.from(edges);
  if (float32) for (let i = 0; i < out.length; i++) out[i] = Math.fround(out[i] as number);
  return out;
}

/** Counts of values per bin: edges.length + 1 numbers. */
export function binCounts(edges: ArrayLike<number>, values: ArrayLike<number>): number[] {
  const counts = new Array<number>(edges.length + 1).fill(0);
  for (let i = 0; i < values.length; i++) {
    const bin = binIndex(edges, values[i] as number);
    counts[bin] = (counts[bin] as number) + 1;
  }
  return counts;
}

/** Share of values per bin (edges.length + 1 numbers summing to 1), rounded to 6 decimals. */
export function binProportions(edges: ArrayLike<number>, values: ArrayLike<number>): number[] {
  if (values.length === 0) throw new RangeError('binProportions needs at least one value');
  return binCounts(edges, values).map((c) => roundProportion(c / values.length));
}
