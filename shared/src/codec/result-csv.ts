import { stringify } from 'csv-stringify/sync';
import type { ModelManifest } from '@onnx-batch/contracts';
import { passthroughText, resultColumns } from './result-columns';
import { renderResultCsvRows, renderResultLines, type ResultChunk } from './result-chunk';

/**
 * The CSV form of results, derived from the manifest: `id`, the result's fields (for a
 * classifier `label`, `confidence` and one `p_<label>` column per class), then `error`: the
 * names of resultColumns (result-columns.ts), which the Arrow and Parquet downloads type.
 */
export function resultCsvHeader(manifest: ModelManifest, passthrough: readonly string[] = []): string[] {
  return resultColumns(manifest, passthrough).map((column) => column.name);
}

type Cell = string | number | boolean | null;

/** One result object (as stored) as the cells of its CSV row, in header order. */
export function resultCsvRow(manifest: ModelManifest, result: Record<string, unknown>): Cell[] {
  const spec = manifest.result;
  const id = (result.id ?? null) as Cell;
  const error = result.error
    ? `${(result.error as { code?: string }).code ?? ''}: ${(result.error as { message?: string }).message ?? ''}`
    : null;
  switch (spec.kind) {
    case 'classification': {
      const p = (result.probabilities ?? {}) as Record<string, number>;
      return [
        id,
        (result.label ?? null) as Cell,
        (result.confidence ?? null) as Cell,
        ...(spec.labels ?? []).map((l) => p[l] ?? null),
        error,
      ];
    }
    case 'regression': {
      if (spec.names && spec.names.length > 1) {
        const values = (result.values ?? {}) as Record<string, number>;
        return [id, ...spec.names.map((n) => values[n] ?? null), error];
      }
      return [id, (result.value ?? null) as Cell, error];
    }
    case 'embedding':
      return [id, result.embedding === undefined ? null : JSON.stringify(result.embedding), error];
    case 'tensor': {
      const outputs = (result.outputs ?? {}) as Record<string, unknown>;
      return [
        id,
        ...(spec.outputs ?? manifest.outputs.map((o) => o.name)).map((n) => (n in outputs ? JSON.stringify(outputs[n]) : null)),
        error,
      ];
    }
  }
}

/** The first line of a CSV results file (NDJSON has none). */
export function resultCsvHeaderText(manifest: ModelManifest, passthrough: readonly string[] = []): string {
  return stringify([resultCsvHeader(manifest, passthrough)]);
}

/**
 * A chunk's results as text, CSV or NDJSON: as the `/results` download and a schedule's results
 * file write them. CSV rows hold the job's `passthrough` columns after `id` (empty where a chunk
 * kept none: one that could not be run).
 */
export function resultChunkText(chunk: ResultChunk, manifest: ModelManifest, csv: boolean, passthrough: readonly string[] = []): string {
  if (!csv) return `${renderResultLines(chunk).join('\n')}\n`;
  const rows = renderResultCsvRows(chunk, (result) => resultCsvRow(manifest, result));
  if (passthrough.length > 0) {
    const kept = passthrough.map((name) => chunk.passthrough?.columns[chunk.passthrough.names.indexOf(name)]);
    rows.forEach((cells, row) => cells.splice(1, 0, ...kept.map((values) => passthroughText(values?.[row]))));
  }
  return stringify(rows);
}
