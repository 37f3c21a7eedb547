import { PSI_EPSILON, psi, psiStatus } from '@onnx-batch/shared';

describe('psi', () => {
  it('when current counts have the reference shares, then PSI is 0', () => {
    expect(psi([0.25, 0.25, 0.5], [10, 10, 20])).toBeCloseTo(0, 12);
  });

  it('when 30/70 is measured against 50/50, then PSI is the hand-computed 0.1694596', () => {
    // (0.3 − 0.5)·ln(0.3/0.5) + (0.7 − 0.5)·ln(0.7/0.5) = 0.2·0.510826 + 0.2·0.336472
    expect(psi([0.5, 0.5], [30, 70])).toBeCloseTo(0.1694596, 6);
  });

  it('when current is given as proportions, then it equals the same counts', () => {
    expect(psi([0.5, 0.5], [0.3, 0.7])).toBeCloseTo(psi([0.5, 0.5], [3, 7]), 15);
  });

  it('when a bin is empty on one side, then its proportion is floored at 1e-4 and PSI stays finite', () => {
    // r = [1, 1e-4], c = [1e-4, 1]: 2 · (1 − 1e-4) · ln(1e4) = 18.418839
    expect(PSI_EPSILON).toBe(1e-4);
    expect(psi([1, 0], [0, 10])).toBeCloseTo(18.418839, 5);
  });

  it('when a bin is empty on both sides, then it adds nothing', () => {
    expect(psi([0.5, 0.5, 0], [50, 50, 0])).toBeCloseTo(0, 12);
  });

  it('when no row was counted, then PSI is NaN (no evidence)', () => {
    expect(psi([0.5, 0.5], [0, 0])).toBeNaN();
  });

  it('when the bin counts differ or a count is negative, then it throws naming the problem', () => {
    expect(() => psi([0.5, 0.5], [1, 2, 3])).toThrow('reference has 2 bins but current has 3');
    expect(() => psi([0.5, 0.5], [1, -1])).toThrow('finite and ≥ 0');
  });
});

describe('psiStatus', () => {
  it('when PSI is below 0.1, then the status is ok', () => {
    expect(psiStatus(0)).toBe('ok');
    expect(psiStatus(0.0999)).toBe('ok');
  });

  it('when PSI is from 0.1 to below 0.25, then the status is warn', () => {
    expect(psiStatus(0.1)).toBe('warn');
    expect(psiStatus(0.2499)).toBe('warn');
  });

  it('when PSI is 0.25 or more, then the status is drift', () => {
    expect(psiStatus(0.25)).toBe('drift');
    expect(psiStatus(18.4)).toBe('drift');
  });

  it('when PSI is NaN (no rows), then the status is ok', () => {
    expect(psiStatus(Number.NaN)).toBe('ok');
  });

  it('when thresholds are given, then they are used', () => {
    expect(psiStatus(0.15, { warn: 0.2, drift: 0.3 })).toBe('ok');
    expect(psiStatus(0.35, { warn: 0.2, drift: 0.3 })).toBe('drift');
  });
});
