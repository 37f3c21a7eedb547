import type { LoadedBaseline } from './baseline';
import { roundProportion } from './bins';
import { countLayout, PREDICTIONS_FIELD, predictionField, ROWS_FIELD, statisticField } from './drift-counts';
import { psi, psiStatus, type PsiStatus, type PsiThresholds } from './psi';

/** A statistic's verdict; `insufficient-data` when fewer rows than the minimum were counted. */
export type DriftStatus = PsiStatus | 'insufficient-data';

/** One bin: its bounds (null for an open end) or its label, and the share of rows in it. */
export type DriftBin = ({ from: number | null; to: number | null } | { label: string }) & { reference: number; current: number | null };

export interface StatisticDrift {
  /** Null when there are too few rows to judge. */
  psi: number | null;
  status: DriftStatus;
  /** Rows counted in these bins. */
  rows: number;
  bins: DriftBin[];
}

export interface DriftSettings {
  thresholds: PsiThresholds;
  /** Fewer rows than this: `insufficient-data`, never a verdict. */
  minRows: number;
}

export interface DriftReport {
  model: string;
  version: string;
  window: string;
  /** ISO times: the start of the oldest minute of the window, and when it was read. */
  from: string;
  to: string;
  rows: number;
  status: DriftStatus;
  minRows: number;
  thresholds: PsiThresholds;
  features: Record<string, StatisticDrift>;
  /** Null for models whose result is raw tensors. */
  prediction: StatisticDrift | null;
}

export interface DriftWindowCounts {
  window: string;
  from: number;
  to: number;
  /** Summed hash fields of the window's buckets (see CountLayout). */
  sums: ReadonlyMap<string, number>;
}

const SEVERITY: Record<DriftStatus, number> = { 'insufficient-data': -1, ok: 0, warn: 1, drift: 2 };

/** The bins between `edges` (the outer two open-ended), each with its reference share and `current(b)`. */
function edgeBins(edges: readonly number[], proportions: readonly number[], current: (b: number) => number | null): DriftBin[] {
  return proportions.map((reference, b) => ({
    from: b === 0 ? null : (edges[b - 1] as number),
    to: b === edges.length ? null : (edges[b] as number),
    reference,
    current: current(b),
  }));
}

/** A statistic's verdict; none unless both the window and the statistic itself hold enough rows. */
function judge(
  reference: readonly number[],
  counts: number[],
  bins: DriftBin[],
  settings: DriftSettings,
  windowRows: number,
): StatisticDrift {
  const rows = counts.reduce((a, b) => a + b, 0);
  if (Math.min(rows, windowRows) < settings.minRows || rows === 0) return { psi: null, status: 'insufficient-data', rows, bins };
  const value = psi(reference, counts);
  return { psi: roundProportion(value), status: psiStatus(value, settings.thresholds), rows, bins };
}

/**
 * The drift of a version over a window, from its summed counts: per statistic and for the
 * predictions, PSI against the baseline's proportions and its status. Pure.
 */
export function driftReport(
  model: string,
  version: string,
  loaded: LoadedBaseline,
  counts: DriftWindowCounts,
  settings: DriftSettings,
): DriftReport {
  const layout = countLayout(loaded);
  const sum = (field: string): number => counts.sums.get(field) ?? 0;
  const rows = sum(ROWS_FIELD);
  const features: Record<string, StatisticDrift> = {};
  loaded.baseline.statistics.forEach((statistic, s) => {
    const entry = layout.statistics[s];
    const current = Array.from({ length: entry?.bins ?? 0 }, (_, b) => sum(statisticField(statistic.name, b)));
    const total = current.reduce((a, b) => a + b, 0);
    const bins = edgeBins(statistic.edges, statistic.proportions, (b) => (total > 0 ? roundProportion((current[b] ?? 0) / total) : null));
    features[statistic.name] = judge(statistic.proportions, current, bins, settings, rows);
  });
  let prediction: StatisticDrift | null = null;
  const reference = loaded.baseline.prediction;
  if (reference && layout.prediction) {
    const current = Array.from({ length: layout.prediction.bins }, (_, b) => sum(predictionField(b)));
    const total = sum(PREDICTIONS_FIELD);
    const share = (b: number): number | null => (total > 0 ? roundProportion((current[b] ?? 0) / total) : null);
    const bins =
      reference.kind === 'label'
        ? reference.labels.map((label, b): DriftBin => ({ label, reference: reference.proportions[b] as number, current: share(b) }))
        : edgeBins(reference.edges, reference.proportions, share);
    prediction = judge(reference.proportions, current, bins, settings, rows);
  }
  let status: DriftStatus = 'insufficient-data';
  if (rows >= settings.minRows && rows > 0) {
    status = 'ok';
    for (const verdict of [...Object.values(features), ...(prediction ? [prediction] : [])]) {
      if (SEVERITY[verdict.status] > SEVERITY[status]) status = verdict.status;
    }
  }
  return {
    model,
    version,
    window: counts.window,
    from: new Date(counts.from).toISOString(),
    to: new Date(counts.to).toISOString(),
    rows,
    status,
    minRows: settings.minRows,
    thresholds: { warn: settings.thresholds.warn, drift: settings.thresholds.drift },
    features,
    prediction,
  };
}
