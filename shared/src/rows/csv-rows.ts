import { finished, type Readable } from 'node:stream';
import { parse, type Info } from 'csv-parse';
import { csvCellValue as cellValue } from '../codec/csv-cell';
import { ProblemError, type FeatureSpec, type ModelManifest } from '@onnx-batch/contracts';
import type { RowSource } from './row-source';

/**
 * Rows of a `text/csv` body whose header row names the features (and optionally `id`), parsed
 * as they arrive. The header is checked first: an unknown or missing column rejects the batch.
 */
/** `maxCellBytes`: the longest record (MAX_ROW_BYTES), header included; a longer one is refused (413) naming its line. */
export function csvRows(body: Readable, manifest: ModelManifest, maxCellBytes: number): RowSource {
  const features = new Map(manifest.features.map((f) => [f.name, f]));
  let line = 1;
  async function* rows(): AsyncGenerator<unknown> {
    let columns: (FeatureSpec | undefined)[] = [];
    let names: string[] = [];
    const parser = body.pipe(
      parse({
        bom: true,
        info: true,
        relax_column_count: false,
        skip_empty_lines: true,
        max_record_size: maxCellBytes,
        columns: (header: string[]) => {
          names = header.map((h) => h.trim());
          for (const name of names) {
            if (name !== 'id' && !features.has(name)) {
              throw new ProblemError(
                'OB_ERR_INVALID_ROWS',
                `line 1: column '${name}' is not a feature of ${manifest.name} (features: ${[...features.keys()].join(', ')})`,
                {
                  errors: [{ line: 1, field: name, message: 'is not a feature of this model' }],
                },
              );
            }
          }
          for (const name of features.keys()) {
            if (!names.includes(name)) {
              throw new ProblemError('OB_ERR_INVALID_ROWS', `line 1: the header has no column '${name}'`, {
                errors: [{ line: 1, field: name, message: 'column is missing' }],
              });
            }
          }
          columns = names.map((n) => features.get(n));
          return names;
        },
      }),
    );
    // pipe() does not pass errors on: an upload refused upstream (too large, corrupt, aborted) ends
    // the parser, also when that happened before these rows were first asked for.
    finished(body, { writable: false }, (error) => {
      if (error) parser.destroy(error);
    });
    try {
      for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: Info }>) {
        line = item.info.lines;
        const row: Record<string, unknown> = {};
        names.forEach((name, i) => {
          row[name] = cellValue(columns[i], item.record[name] ?? '');
        });
        yield row;
      }
    } catch (error) {
      if (error instanceof ProblemError) throw error;
      const e = error as Error & { code?: string; lines?: number };
      const where = e.lines ?? line + 1;
      if (e.code === 'CSV_MAX_RECORD_SIZE') {
        throw new ProblemError(
          'OB_ERR_PAYLOAD_TOO_LARGE',
          `line ${where} is longer than ${maxCellBytes} bytes (MAX_ROW_BYTES); nothing was queued`,
          { errors: [{ line: where, message: `is longer than ${maxCellBytes} bytes` }] },
        );
      }
      throw new ProblemError('OB_ERR_INVALID_ROWS', `line ${where}: ${e.message}; nothing was queued`, {
        errors: [{ line: where, message: e.message }],
      });
    } finally {
      body.unpipe(parser);
    }
  }
  return { rows: rows(), currentLine: () => line };
}
