import type { FeatureSpec } from '@onnx-batch/contracts';

const NUMBER = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/**
 * A CSV cell as the feature's JSON value; what does not convert is left for validation to name.
 * Shared by the API's CSV uploads and the baseline command, so both read a CSV file alike.
 */
export function csvCellValue(feature: FeatureSpec | undefined, cell: string): unknown {
  if (!feature) return cell; // the id column
  switch (feature.type) {
    case 'number':
    case 'integer':
      return NUMBER.test(cell) ? Number(cell) : cell;
    case 'string':
      return cell;
    case 'tensor':
      if (cell.trimStart().startsWith('[')) {
        try {
          return JSON.parse(cell) as unknown;
        } catch {
          return cell;
        }
      }
      return cell.trim();
  }
}
