import type { ModelManifest } from '@onnx-batch/contracts';
import type { Golden } from './golden';

/** One value of a result that is not what the training framework produced. */
export interface Deviation {
  row: number;
  field: string;
  got: unknown;
  expected: unknown;
}

function flatten(value: unknown): unknown[] {
  return Array.isArray(value) ? value.flat(Number.POSITIVE_INFINITY) : [value];
}

/**
 * Within `tolerance` of the expected value, relative to its size beyond 1: results print 6
 * significant digits, so a regression value near 200 reads back up to 5e-4 (2.5e-6 of it) off,
 * while probabilities and other values up to 1 keep the absolute tolerance.
 */
function closeEnough(got: unknown, expected: unknown, tolerance: number): boolean {
  return typeof got === 'number' && typeof expected === 'number' && Math.abs(got - expected) <= tolerance * Math.max(1, Math.abs(expected));
}

/**
 * Every place where the service's results differ from golden.json: floats by more than
 * `tolerance` (relative beyond 1), labels at all, a row count or an error in place of a result. Works from the
 * manifest's `result` section, so it covers any model of the repository. Empty = parity.
 */
export function goldenDeviations(manifest: ModelManifest, golden: Golden, results: unknown[], tolerance = 1e-5): Deviation[] {
  const deviations: Deviation[] = [];
  if (results.length !== golden.inputs.length)
    deviations.push({ row: -1, field: '(row count)', got: results.length, expected: golden.inputs.length });
  const outputs = golden.outputs as Record<string, unknown[]>;
  const spec = manifest.result;
  results.forEach((raw, row) => {
    const result = raw as Record<string, unknown>;
    if (result.error !== undefined) {
      deviations.push({ row, field: 'error', got: result.error, expected: undefined });
      return;
    }
    switch (spec.kind) {
      case 'classification': {
        const labels = spec.labels ?? [];
        const expected = flatten(outputs[spec.output ?? '']?.[row]);
        const probabilities = (result.probabilities ?? {}) as Record<string, unknown>;
        labels.forEach((label, k) => {
          if (!closeEnough(probabilities[label], expected[k], tolerance))
            deviations.push({ row, field: `probabilities.${label}`, got: probabilities[label], expected: expected[k] });
        });
        if (golden.labels && result.label !== golden.labels[row])
          deviations.push({ row, field: 'label', got: result.label, expected: golden.labels[row] });
        break;
      }
      case 'regression': {
        const expected = flatten(outputs[spec.output ?? '']?.[row]);
        const names = spec.names ?? [];
        if (names.length <= 1) {
          if (!closeEnough(result.value, expected[0], tolerance))
            deviations.push({ row, field: 'value', got: result.value, expected: expected[0] });
        } else {
          const values = (result.values ?? {}) as Record<string, unknown>;
          names.forEach((name, k) => {
            if (!closeEnough(values[name], expected[k], tolerance))
              deviations.push({ row, field: `values.${name}`, got: values[name], expected: expected[k] });
          });
        }
        break;
      }
      case 'embedding': {
        const g = flatten(result.embedding);
        const e = flatten(outputs[spec.output ?? '']?.[row]);
        if (g.length !== e.length) deviations.push({ row, field: 'embedding (length)', got: g.length, expected: e.length });
        e.forEach((value, i) => {
          if (!closeEnough(g[i], value, tolerance)) deviations.push({ row, field: `embedding[${i}]`, got: g[i], expected: value });
        });
        break;
      }
      case 'tensor': {
        const got = (result.outputs ?? {}) as Record<string, unknown>;
        for (const name of spec.outputs ?? manifest.outputs.map((o) => o.name)) {
          const g = flatten(got[name]);
          const e = flatten(outputs[name]?.[row]);
          if (g.length !== e.length) deviations.push({ row, field: `outputs.${name} (length)`, got: g.length, expected: e.length });
          e.forEach((value, i) => {
            if (!closeEnough(g[i], value, tolerance)) deviations.push({ row, field: `outputs.${name}[${i}]`, got: g[i], expected: value });
          });
        }
        break;
      }
    }
  });
  return deviations;
}

/** Rows [start, end) of a golden file, inputs, outputs and labels alike. */
export function sliceGolden(golden: Golden, start: number, end: number): Golden {
  const outputs: Golden['outputs'] = {};
  for (const [name, values] of Object.entries(golden.outputs)) outputs[name] = values.slice(start, end);
  return {
    ...golden,
    inputs: golden.inputs.slice(start, end),
    outputs,
    ...(golden.labels ? { labels: golden.labels.slice(start, end) } : {}),
  };
}
