import type { ResultColumn, ResultColumnsChunk, ResultColumnValues } from '../codec/result-columns';
import { hyparquetWriter } from './esm-packages';

type WriterModule = ReturnType<typeof hyparquetWriter>;
type ParquetWriter = InstanceType<WriterModule['ParquetWriter']>;
type ParquetWriterOptions = ConstructorParameters<WriterModule['ParquetWriter']>[0];
type SchemaElement = ParquetWriterOptions['schema'][number];
type ByteWriter = InstanceType<WriterModule['ByteWriter']>;
type ColumnSource = Parameters<ParquetWriter['write']>[0]['columnData'][number];

/** Where the bytes of a file go, a piece at a time; resolves when the sink can take more. */
export type ByteSink = (bytes: Uint8Array) => Promise<void>;

/**
 * The Parquet schema of results columns (result-columns.ts): Utf8 is BYTE_ARRAY (UTF8), float32
 * is FLOAT, FixedSizeList<float32>[n] a LIST of n required FLOATs (Parquet has no fixed-size
 * list); every column OPTIONAL.
 */
export function resultParquetSchema(columns: readonly ResultColumn[]): SchemaElement[] {
  const schema: SchemaElement[] = [{ name: 'root', num_children: columns.length }];
  for (const column of columns) {
    switch (column.type.kind) {
      case 'utf8':
        schema.push({ name: column.name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' });
        break;
      case 'float32':
        schema.push({ name: column.name, type: 'FLOAT', repetition_type: 'OPTIONAL' });
        break;
      case 'float32-list':
        schema.push(
          { name: column.name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
          { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
          { name: 'element', type: 'FLOAT', repetition_type: 'REQUIRED' },
        );
        break;
    }
  }
  return schema;
}

/**
 * A Parquet file of results written to a sink as it goes: one row group per `write()` (one
 * stored chunk), snappy-compressed by hyparquet-writer. After each row group the bytes so far
 * go to the sink and the writer waits for it (backpressure); only the row group being encoded
 * is held here. `finish()` writes the footer.
 */
export class ParquetResultsWriter {
  private readonly writer: ParquetWriter;

  constructor(
    private readonly columns: readonly ResultColumn[],
    sink: ByteSink,
  ) {
    const { ByteWriter, ParquetWriter } = hyparquetWriter();
    this.writer = new ParquetWriter({ writer: sinkWriter(new ByteWriter(), sink), schema: resultParquetSchema(columns) });
  }

  async write(chunk: ResultColumnsChunk): Promise<void> {
    if (chunk.rows === 0) return;
    const columnData = chunk.columns.map((values, i): ColumnSource => ({ name: this.columns[i]?.name ?? '', data: parquetValues(values) }));
    await this.writer.write({ columnData, rowGroupSize: chunk.rows });
  }

  async finish(): Promise<void> {
    await this.writer.finish();
  }
}

/**
 * hyparquet-writer's ByteWriter whose `flush()` (called after each row group) and `finish()`
 * hand the bytes so far to the sink and answer its promise, which ParquetWriter awaits. The
 * buffer handed over is the sink's from then on; writing goes on in a fresh one.
 */
function sinkWriter(writer: ByteWriter, sink: ByteSink): ParquetWriterOptions['writer'] {
  const flush = (): Promise<void> => {
    if (writer.index === 0) return Promise.resolve();
    const bytes = new Uint8Array(writer.buffer, 0, writer.index);
    writer.buffer = new ArrayBuffer(writer.buffer.byteLength);
    writer.view = new DataView(writer.buffer);
    writer.index = 0;
    return sink(bytes);
  };
  return Object.assign(writer, { flush, finish: flush });
}

/** A column's values as hyparquet-writer takes them: typed arrays when nothing is null, else arrays with nulls. */
function parquetValues(values: ResultColumnValues): ColumnSource['data'] {
  switch (values.kind) {
    case 'utf8':
      return values.values;
    case 'float32': {
      const valid = values.valid;
      if (!valid) return values.values;
      const out = new Array<number | null>(values.values.length);
      for (let row = 0; row < out.length; row++) out[row] = valid[row] ? (values.values[row] as number) : null;
      return out;
    }
    case 'float32-list': {
      const { size, valid } = values;
      const rows = values.values.length / size;
      const out = new Array<number[] | null>(rows);
      for (let row = 0; row < rows; row++) {
        out[row] = valid && !valid[row] ? null : Array.from(values.values.subarray(row * size, (row + 1) * size));
      }
      return out;
    }
  }
}
