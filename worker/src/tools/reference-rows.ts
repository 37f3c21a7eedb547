import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parse, type Info } from 'csv-parse';
import type { FeatureSpec, ModelManifest } from '@onnx-batch/contracts';
import { csvCellValue } from '@onnx-batch/shared';

export type ReferenceFormat = 'csv' | 'ndjson';

/** One row of a reference file and the line it starts on. */
export interface ReferenceRow {
  line: number;
  row: unknown;
}

/** A reference file's format from its extension (.csv, .ndjson, .jsonl); null when it says nothing. */
export function formatOf(file: string): ReferenceFormat | null {
  const lower = file.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.ndjson') || lower.endsWith('.jsonl')) return 'ndjson';
  return null;
}

/**
 * Rows of a reference file, read as the API reads uploads: NDJSON one JSON value a line (blank
 * lines skipped); CSV with a header naming the features (and optionally `id`), cells converted by
 * the API's own csvCellValue. A malformed line throws naming it.
 */
export async function* referenceRows(file: string, format: ReferenceFormat, manifest: ModelManifest): AsyncGenerator<ReferenceRow> {
  if (format === 'ndjson') {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Number.POSITIVE_INFINITY });
    let line = 0;
    for await (const text of lines) {
      line++;
      if (text.trim() === '') continue;
      try {
        yield { line, row: JSON.parse(text) as unknown };
      } catch (error) {
        throw new Error(`${file} line ${line}: not valid JSON (${(error as Error).message})`, { cause: error });
      }
    }
    return;
  }
  const features = new Map(manifest.features.map((f) => [f.name, f]));
  let columns: (FeatureSpec | undefined)[] = [];
  let names: string[] = [];
  const parser = createReadStream(file).pipe(
    parse({
      bom: true,
      info: true,
      skip_empty_lines: true,
      columns: (header: string[]) => {
        names = header.map((h) => h.trim());
        for (const name of names) {
          if (name !== 'id' && !features.has(name))
            throw new Error(
              `${file} line 1: column '${name}' is not a feature of ${manifest.name} (features: ${[...features.keys()].join(', ')})`,
            );
        }
        for (const name of features.keys())
          if (!names.includes(name)) throw new Error(`${file} line 1: the header has no column '${name}'`);
        columns = names.map((n) => features.get(n));
        return names;
      },
    }),
  );
  let line = 1;
  try {
    for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: Info }>) {
      line = item.info.lines;
      const row: Record<string, unknown> = {};
      names.forEach((name, i) => {
        row[name] = csvCellValue(columns[i], item.record[name] ?? '');
      });
      yield { line, row };
    }
  } catch (error) {
    const message = (error as Error).message;
    if (message.startsWith(file)) throw error;
    throw new Error(`${file} line ${(error as { lines?: number }).lines ?? line + 1}: ${message}`, { cause: error });
  }
}
