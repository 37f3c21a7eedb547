import { readFileSync } from 'node:fs';
import path from 'node:path';
import { MODELS_DIR } from './env';

export interface Golden {
  framework: string;
  inputs: Record<string, unknown>[];
  outputs: Record<string, number[][]>;
  labels?: string[];
}

export function loadGolden(model: string, version: string): Golden {
  return JSON.parse(readFileSync(path.join(MODELS_DIR, model, version, 'golden.json'), 'utf8')) as Golden;
}

export interface ClassificationResult {
  id?: string | number;
  label: string;
  confidence: number;
  probabilities: Record<string, number>;
}

/** Largest absolute difference between results and the golden probabilities, and label mismatches. */
export function compareWithGolden(
  results: ClassificationResult[],
  golden: Golden,
  labels: string[],
): { maxDiff: number; labelMismatches: number[] } {
  const expected = golden.outputs.probabilities ?? [];
  let maxDiff = 0;
  const labelMismatches: number[] = [];
  results.forEach((result, row) => {
    labels.forEach((label, k) => {
      const diff = Math.abs((result.probabilities[label] ?? Number.NaN) - (expected[row]?.[k] ?? Number.NaN));
      maxDiff = Number.isNaN(diff) ? Number.POSITIVE_INFINITY : Math.max(maxDiff, diff);
    });
    if (golden.labels && result.label !== golden.labels[row]) labelMismatches.push(row);
  });
  return { maxDiff, labelMismatches };
}
