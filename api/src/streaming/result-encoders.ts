import type { Writable } from 'node:stream';
import type { ModelManifest } from '@onnx-batch/contracts';
import {
  ArrowResultsWriter,
  ParquetResultsWriter,
  resultChunkColumns,
  resultChunkText,
  resultColumns,
  resultCsvHeaderText,
  type ResultChunk,
} from '@onnx-batch/shared';
import { RESULT_FORMATS, type ResultFormat } from './result-formats';
import { writeDraining } from './write-draining';

/**
 * How one download format writes a job's results to the response: its beginning, each stored
 * chunk (never an empty one), its end. Each step waits for the response to drain.
 */
export interface ResultEncoder {
  /** Content-Type, exactly. */
  contentType: string;
  /** Of the attachment's file name, `<jobId>.<extension>`. */
  extension: string;
  start(): Promise<void>;
  chunk(results: ResultChunk): Promise<void>;
  end(): Promise<void>;
}

export type StreamedFormat = Exclude<ResultFormat, 'json'>;

/** The encoder of a streamed format for one model version's results, writing to `out`. */
export function resultEncoder(
  format: StreamedFormat,
  manifest: ModelManifest,
  out: Writable,
  /** The job's kept input columns (`passthrough=` at submit). */
  passthrough: readonly string[] = [],
): ResultEncoder {
  switch (format) {
    case 'ndjson':
      return {
        contentType: RESULT_FORMATS.ndjson,
        extension: 'ndjson',
        start: () => Promise.resolve(),
        chunk: (results) => writeDraining(out, resultChunkText(results, manifest, false)),
        end: () => Promise.resolve(),
      };
    case 'csv':
      return {
        contentType: 'text/csv; charset=utf-8',
        extension: 'csv',
        start: () => writeDraining(out, resultCsvHeaderText(manifest, passthrough)),
        chunk: (results) => writeDraining(out, resultChunkText(results, manifest, true, passthrough)),
        end: () => Promise.resolve(),
      };
    case 'arrow': {
      const columns = resultColumns(manifest, passthrough);
      const writer = new ArrowResultsWriter(columns);
      return {
        contentType: RESULT_FORMATS.arrow,
        extension: 'arrow',
        start: () => writeDraining(out, writer.start()),
        chunk: (results) => writeDraining(out, writer.batch(resultChunkColumns(columns, results))),
        end: () => writeDraining(out, writer.end()),
      };
    }
    case 'parquet': {
      const columns = resultColumns(manifest, passthrough);
      const writer = new ParquetResultsWriter(columns, (bytes) => writeDraining(out, bytes));
      return {
        contentType: RESULT_FORMATS.parquet,
        extension: 'parquet',
        // The leading magic goes out with the first row group.
        start: () => Promise.resolve(),
        chunk: (results) => writer.write(resultChunkColumns(columns, results)),
        end: () => writer.finish(),
      };
    }
  }
}
