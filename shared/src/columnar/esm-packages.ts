import nodeModule from 'node:module';
import type * as HyparquetModule from 'hyparquet' with { 'resolution-mode': 'import' };
import type * as HyparquetCompressorsModule from 'hyparquet-compressors' with { 'resolution-mode': 'import' };
import type * as HyparquetWriterModule from 'hyparquet-writer' with { 'resolution-mode': 'import' };

/**
 * hyparquet and its companions ship as ES modules only. These packages are CommonJS, so they load
 * them with Node's own require (Node ≥ 20.19 requires an ES module synchronously). It is Node's
 * require, not the one a caller may have been given: under jest's module registry, which cannot
 * load ES modules, the Parquet paths work as they do in production. Loaded on first use, so a
 * process that never sees Parquet never pays for it.
 */
const nodeRequire = hostCreateRequire()(__filename);

/**
 * `createRequire` of Node itself. Under jest, `node:module` is jest's subclass of Node's Module,
 * whose `createRequire` answers jest's require (it refuses ES modules before Node 24.9); the
 * class it extends is Node's, with Node's `createRequire`. Anywhere else that parent is
 * Function.prototype, and `node:module`'s own is Node's.
 */
function hostCreateRequire(): typeof nodeModule.createRequire {
  const parent = Object.getPrototypeOf(nodeModule.Module) as { createRequire?: unknown };
  return typeof parent.createRequire === 'function' ? (parent.createRequire as typeof nodeModule.createRequire) : nodeModule.createRequire;
}

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
