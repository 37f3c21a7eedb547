import type { Readable } from 'node:stream';
import { checkedRecordBatches } from './arrow-batches';
import { invalidUpload } from './column-batch';
import { hyparquet, hyparquetCompressors } from './esm-packages';

/**
 * Ground-truth labels in a table: an Arrow IPC stream or a Parquet file whose columns are label
 * fields (`index`, `id`, `label`, `value`), each row one label, read as plain objects with their
 * 1-based row number (what problems name as the line). Integers come as numbers (a BigInt beyond
 * 2^53 as its text, which no check accepts); validation is the caller's, as for NDJSON.
 */
export async function* arrowLabelRows(body: Readable): AsyncGenerator<[Record<string, unknown>, number]> {
  for await (const { batch, firstRow } of checkedRecordBatches(body)) {
    const names = batch.schema.fields.map((f) => f.name);
    const columns = names.map((_, i) => batch.getChildAt(i));
    for (let r = 0; r < batch.numRows; r++) {
      const row: Record<string, unknown> = {};
      names.forEach((name, i) => (row[name] = plain(columns[i]?.get(r))));
      yield [row, firstRow + r + 1];
    }
  }
}

/** The rows of a Parquet file on disk (a spooled upload), one row group at a time. */
export async function* parquetLabelRows(path: string): AsyncGenerator<[Record<string, unknown>, number]> {
  const { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } = hyparquet();
  const file = await asyncBufferFromFile(path);
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    metadata = await parquetMetadataAsync(file);
  } catch (error) {
    throw invalidUpload(`the body is not a readable Parquet file (${error instanceof Error ? error.message : String(error)})`);
  }
  const { compressors } = hyparquetCompressors();
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    const rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd, compressors });
    for (const [i, row] of rows.entries()) {
      const out: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(row)) out[name] = plain(value);
      yield [out, rowStart + i + 1];
    }
    rowStart = rowEnd;
  }
}

function plain(value: unknown): unknown {
  if (typeof value === 'bigint')
    return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : String(value);
  return value;
}
