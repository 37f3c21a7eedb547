import type { ModelManifest } from '@onnx-batch/contracts';
import { ArrowResultsWriter } from '../columnar/arrow-results';
import { type ByteSink, ParquetResultsWriter } from '../columnar/parquet-results';
import { resultChunkColumns, resultColumns } from './result-columns';
import type { ResultChunk } from './result-chunk';
import { resultChunkText, resultCsvHeaderText } from './result-csv';

/** The formats a job's results stream in, to a download or a schedule's results file. */
export type StreamedResultFormat = 'ndjson' | 'csv' | 'arrow' | 'parquet';

/**
 * How one format writes a job's results to a sink: its beginning, each stored chunk (never an
 * empty one), its end. Every step resolves once the sink has taken what it wrote.
 */
export interface ResultEncoder {
  start(): Promise<void>;
  chunk(results: ResultChunk): Promise<void>;
  end(): Promise<void>;
}

/** The encoder of `format` for one model version's results (and the job's `passthrough` columns), writing to `sink`. */
export function resultEncoder(
  format: StreamedResultFormat,
  manifest: ModelManifest,
  sink: ByteSink,
  passthrough: readonly string[] = [],
): ResultEncoder {
  const text = (value: string): Promise<void> => sink(Buffer.from(value, 'utf8'));
  const nothing = (): Promise<void> => Promise.resolve();
  switch (format) {
    case 'ndjson':
      return { start: nothing, chunk: (results) => text(resultChunkText(results, manifest, false)), end: nothing };
    case 'csv':
      return {
        start: () => text(resultCsvHeaderText(manifest, passthrough)),
        chunk: (results) => text(resultChunkText(results, manifest, true, passthrough)),
        end: nothing,
      };
    case 'arrow': {
      const columns = resultColumns(manifest, passthrough);
      const writer = new ArrowResultsWriter(columns);
      return {
        start: () => sink(writer.start()),
        chunk: (results) => sink(writer.batch(resultChunkColumns(columns, results))),
        end: () => sink(writer.end()),
      };
    }
    case 'parquet': {
      const columns = resultColumns(manifest, passthrough);
      const writer = new ParquetResultsWriter(columns, sink);
      return {
        start: nothing, // the leading magic goes out with the first row group
        chunk: (results) => writer.write(resultChunkColumns(columns, results)),
        end: () => writer.finish(),
      };
    }
  }
}
