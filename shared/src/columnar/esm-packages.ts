import { createRequire } from 'node:module';
import type * as HyparquetModule from 'hyparquet' with { 'resolution-mode': 'import' };
import type * as HyparquetCompressorsModule from 'hyparquet-compressors' with { 'resolution-mode': 'import' };
import type * as HyparquetWriterModule from 'hyparquet-writer' with { 'resolution-mode': 'import' };

/**
 * hyparquet and its companions ship as ES modules only. These packages are CommonJS, so they load
 * them with require, which Node (≥ 20.19) answers with the ES module, synchronously. (jest's own
 * require cannot; jest.config.js compiles these packages to CommonJS for the tests.) Loaded on
 * first use, so a process that never sees Parquet never pays for it.
 */
const nodeRequire = createRequire(__filename);

type Hyparquet = typeof HyparquetModule;
type HyparquetWriter = typeof HyparquetWriterModule;
type HyparquetCompressors = typeof HyparquetCompressorsModule;

let reader: Hyparquet | undefined;
let writer: HyparquetWriter | undefined;
let compressors: HyparquetCompressors | undefined;

export function hyparquet(): Hyparquet {
  return (reader ??= nodeRequire('hyparquet') as Hyparquet);
}

export function hyparquetWriter(): HyparquetWriter {
  return (writer ??= nodeRequire('hyparquet-writer') as HyparquetWriter);
}

export function hyparquetCompressors(): HyparquetCompressors {
  return (compressors ??= nodeRequire('hyparquet-compressors') as HyparquetCompressors);
}
