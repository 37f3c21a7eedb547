import type { QualityMetrics } from '@onnx-batch/contracts';
import type { ModelRepository } from '@onnx-batch/shared';

/** A version's reference quality from its manifest (`metrics.reference`: its evaluation set), or null. */
export function referenceOf(repository: ModelRepository, model: string, version: string): Record<string, unknown> | null {
  return (repository.find(model, version)?.manifest.metrics?.reference as Record<string, unknown> | undefined) ?? null;
}

/** The few figures a bucket of a time series shows (the window's total has them all). */
export function bucketSummary(metrics: QualityMetrics): Record<string, number | null> {
  const common = { predictedRows: metrics.predictedRows, labelledRows: metrics.labelledRows };
  if (metrics.kind === 'regression')
    return { ...common, mae: metrics.mae, rmse: metrics.rmse, r2: metrics.r2, bias: metrics.bias, meanPrediction: metrics.meanPrediction };
  return {
    ...common,
    accuracy: metrics.accuracy,
    macroF1: metrics.macroF1,
    logLoss: metrics.logLoss,
    estimatedAccuracy: metrics.estimated?.accuracy ?? null,
  };
}
