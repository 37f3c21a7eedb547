import { AggregatorRegistry, Registry } from 'prom-client';
import { registerDriftGauges } from '@onnx-batch/api';
import type { DriftReport, StatisticDrift } from '@onnx-batch/shared';
import { parseExposition } from '../helpers/prometheus';

const statistic = (psi: number): StatisticDrift => ({ psi, status: 'drift', rows: 1200, bins: [] });

/** What every API process reads from Redis alike: one drifting iris version. */
const REPORT: DriftReport = {
  model: 'iris',
  version: '2',
  window: '15m',
  from: '2026-01-01T00:00:00.000Z',
  to: '2026-01-01T00:15:00.000Z',
  rows: 1200,
  status: 'drift',
  minRows: 1000,
  thresholds: { warn: 0.1, drift: 0.25 },
  features: { petal_length: statistic(1.5) },
  prediction: statistic(0.75),
};

describe('drift gauges of several API processes (API_PROCESSES > 1)', () => {
  it("when the cluster primary merges the processes' scrapes, then each PSI is reported once, not summed", async () => {
    // Arrange: two processes, each reading the same report from Redis
    const processes = [new Registry(), new Registry()];
    for (const registry of processes) registerDriftGauges(registry, () => Promise.resolve([REPORT]));

    // Act
    const merged = AggregatorRegistry.aggregate(await Promise.all(processes.map((r) => r.getMetricsAsJSON())));

    // Assert
    const samples = parseExposition(await merged.metrics());
    expect(samples.map((s) => [s.name, s.value])).toEqual([
      ['onnx_batch_feature_psi', 1.5],
      ['onnx_batch_prediction_psi', 0.75],
    ]);
  });
});
