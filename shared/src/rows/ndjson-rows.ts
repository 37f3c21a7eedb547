import type { Readable } from 'node:stream';
import { ProblemError } from '@onnx-batch/contracts';
import type { RowSource } from './row-source';

/**
 * Rows of an `application/x-ndjson` body, one JSON value a line, parsed as they arrive: memory
 * holds one network chunk and one line, never the batch. Blank lines are skipped; a line longer
 * than `maxLineBytes` (MAX_ROW_BYTES) rejects the batch as soon as that much of it has arrived,
 * and a line that is not JSON rejects it too, each naming the line. Each byte is looked at once:
 * a long line arriving in many pieces is not searched again for every piece.
 */
export function ndjsonRows(body: Readable, maxLineBytes: number): RowSource {
  let line = 0;
  async function* rows(): AsyncGenerator<unknown> {
    let pending = '';
    const parse = (text: string): unknown => {
      try {
        return JSON.parse(text) as unknown;
      } catch (error) {
        throw new ProblemError('OB_ERR_INVALID_ROWS', `line ${line}: not valid JSON (${(error as Error).message}); nothing was queued`, {
          errors: [{ line, message: 'is not valid JSON' }],
        });
      }
    };
    body.setEncoding('utf8');
    for await (const piece of body as AsyncIterable<string>) {
      // The newline search starts in the new piece: what is pending holds none.
      let newline = piece.indexOf('\n');
      let from = 0;
      while (newline !== -1) {
        line++;
        const text = (pending + piece.slice(from, newline)).trim();
        pending = '';
        from = newline + 1;
        if (text !== '') yield parse(text);
        newline = piece.indexOf('\n', from);
      }
      pending += piece.slice(from);
      if (pending.length > maxLineBytes) {
        throw new ProblemError(
          'OB_ERR_PAYLOAD_TOO_LARGE',
          `line ${line + 1} is longer than ${maxLineBytes} bytes (MAX_ROW_BYTES); nothing was queued`,
          { errors: [{ line: line + 1, message: `is longer than ${maxLineBytes} bytes` }] },
        );
      }
    }
    const last = pending.trim();
    if (last !== '') {
      line++;
      yield parse(last);
    }
  }
  return { rows: rows(), currentLine: () => line };
}
