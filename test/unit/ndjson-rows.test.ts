import { Readable } from 'node:stream';
import { ProblemError } from '@onnx-batch/contracts';
import { ndjsonRows } from '@onnx-batch/shared';

/** A byte stream delivering `text` in pieces of `size` bytes (as a socket may cut it). */
function pieces(text: string, size: number): Readable {
  const bytes = Buffer.from(text);
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
    })(),
    { objectMode: false },
  );
}

async function readAll(text: string, size: number, maxLine = 1024): Promise<{ rows: unknown[]; lines: number[] }> {
  const source = ndjsonRows(pieces(text, size), maxLine);
  const rows: unknown[] = [];
  const lines: number[] = [];
  for await (const row of source.rows) {
    rows.push(row);
    lines.push(source.currentLine());
  }
  return { rows, lines };
}

describe('ndjsonRows', () => {
  const text = '{"a":1}\n\n  {"a":2}  \r\n{"a":"x\\ny"}\n{"a":4}';

  it.each([1, 2, 3, 7, 64])('when the body arrives in pieces of %i bytes, then every row and its line come out the same', async (size) => {
    expect(await readAll(text, size)).toEqual({ rows: [{ a: 1 }, { a: 2 }, { a: 'x\ny' }, { a: 4 }], lines: [1, 3, 4, 5] });
  });

  it('when a line grows past the limit, then it is refused naming the line before it ends, with 413', async () => {
    const endless = `{"a":1}\n{"a":"${'x'.repeat(5000)}`;
    const refused = readAll(endless, 100, 1024);
    await expect(refused).rejects.toBeInstanceOf(ProblemError);
    await expect(refused).rejects.toMatchObject({ code: 'OB_ERR_PAYLOAD_TOO_LARGE', extensions: { errors: [{ line: 2 }] } });
  });

  it('when a line is not JSON, then it is refused naming it', async () => {
    await expect(readAll('{"a":1}\n{"a":\n', 4)).rejects.toMatchObject({
      code: 'OB_ERR_INVALID_ROWS',
      extensions: { errors: [{ line: 2 }] },
    });
  });
});
