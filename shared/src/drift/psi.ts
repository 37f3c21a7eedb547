/** Floor of every proportion before the logarithm: an empty bin counts as 0.01 % of rows, not 0. */
export const PSI_EPSILON = 1e-4;

export interface PsiThresholds {
  /** PSI from here on is 'warn' (default 0.1). */
  warn: number;
  /** PSI from here on is 'drift' (default 0.25). */
  drift: number;
}

export const DEFAULT_PSI_THRESHOLDS: PsiThresholds = Object.freeze({ warn: 0.1, drift: 0.25 });

export type PsiStatus = 'ok' | 'warn' | 'drift';

/**
 * Population stability index of current data against a baseline:
 * PSI = Σ (c_i − r_i) · ln(c_i / r_i) over the bins, with r and c proportions each floored at
 * PSI_EPSILON (so an empty bin on either side gives a large but finite term).
 *
 * `reference`: the baseline's proportions. `current`: the bins' counts (what workers add up;
 * they are divided by their sum here, so proportions work as well). NaN when current is all 0:
 * no rows, no evidence either way.
 */
export function psi(reference: readonly number[], current: readonly number[]): number {
  if (reference.length !== current.length) {
    throw new RangeError(`psi: reference has ${reference.length} bins but current has ${current.length}`);
  }
  let total = 0;
  for (const c of current) {
    if (!(c >= 0) || !Number.isFinite(c)) throw new RangeError(`psi: current counts must be finite and ≥ 0, not ${c}`);
    total += c;
  }
  if (total === 0) return Number.NaN;
  let sum = 0;
  for (let i = 0; i < reference.length; i++) {
    const r = Math.max(reference[i] as number, PSI_EPSILON);
    const c = Math.max((current[i] as number) / total, PSI_EPSILON);
    sum += (c - r) * Math.log(c / r);
  }
  return sum;
}

/** 'ok' below thresholds.warn, 'warn' below thresholds.drift, else 'drift'; NaN (no rows) is 'ok'. */
export function psiStatus(value: number, thresholds: PsiThresholds = DEFAULT_PSI_THRESHOLDS): PsiStatus {
  if (Number.isNaN(value) || value < thresholds.warn) return 'ok';
  return value < thresholds.drift ? 'warn' : 'drift';
}
