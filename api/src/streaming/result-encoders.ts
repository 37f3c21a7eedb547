import type { Writable } from 'node:stream';
import type { ModelManifest } from '@onnx-batch/contracts';
import { resultEncoder as formatEncoder, type ResultEncoder as FormatEncoder } from '@onnx-batch/shared';
import { RESULT_FORMATS, type ResultFormat } from './result-formats';
import { writeDraining } from './write-draining';

/** A results download: the shared format encoder (shared/src/codec/result-encoder.ts) and its headers. */
export interface ResultEncoder extends FormatEncoder {
  /** Content-Type, exactly. */
  contentType: string;
  /** Of the attachment's file name, `<jobId>.<extension>`. */
  extension: string;
}

export type StreamedFormat = Exclude<ResultFormat, 'json'>;

/** The encoder of a streamed format for one model version's results, writing to `out` and waiting for it to drain. */
export function resultEncoder(
  format: StreamedFormat,
  manifest: ModelManifest,
  out: Writable,
  /** The job's kept input columns (`passthrough=` at submit). */
  passthrough: readonly string[] = [],
): ResultEncoder {
  return {
    ...formatEncoder(format, manifest, (bytes) => writeDraining(out, bytes), passthrough),
    contentType: format === 'csv' ? 'text/csv; charset=utf-8' : RESULT_FORMATS[format],
    extension: format,
  };
}
