import { qualityMetrics, qualityRollbackReason } from '@onnx-batch/shared';

// The guard's rule on a canary's realised quality (rollouts/rollout-stats.ts): labelled accuracy
// of the canary arm against the default arm over the same window.

describe("a canary's realised quality", () => {
  const quality = (labels: [number, number][]): ReturnType<typeof qualityMetrics> => {
    // labels: [truth, predicted] of labelled rows, one class-k probability of 0.9 per row.
    const sums = new Map<string, number>([
      ['n', labels.length],
      ['p', labels.length],
    ]);
    for (const [t, k] of labels) sums.set(`cm:${t}:${k}`, (sums.get(`cm:${t}:${k}`) ?? 0) + 1);
    return qualityMetrics('classification', sums, ['a', 'b']);
  };
  const rows = (n: number, wrong: number): [number, number][] => Array.from({ length: n }, (_, i) => [0, i < wrong ? 1 : 0]);
  const rule = { minLabels: 200, margin: 0.05, window: 'hour buckets from 2026-12-07T12:00Z' };

  it('when both arms have enough labels and the canary is worse by more than the margin, then the reason names both figures', () => {
    const reason = qualityRollbackReason(
      { version: '1', metrics: quality(rows(200, 40)) },
      { version: '2', metrics: quality(rows(250, 5)) },
      rule,
    );

    expect(reason).toBe(
      "canary version 1's labelled accuracy 0.8 on 200 rows against the default version 2's 0.98 on 250 rows " +
        '(hour buckets from 2026-12-07T12:00Z): lower by 0.18, more than QUALITY_ALERT_MARGIN 0.05',
    );
  });

  it('when an arm has fewer labels than QUALITY_MIN_LABELS, or the canary is within the margin, then no reason', () => {
    expect(
      qualityRollbackReason({ version: '1', metrics: quality(rows(199, 100)) }, { version: '2', metrics: quality(rows(250, 0)) }, rule),
    ).toBeNull();
    expect(
      qualityRollbackReason({ version: '1', metrics: quality(rows(200, 9)) }, { version: '2', metrics: quality(rows(200, 0)) }, rule),
    ).toBeNull();
  });
});
