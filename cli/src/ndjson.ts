/**
 * Line-level helpers for NDJSON streams: memory holds one network chunk and one partial line,
 * never the whole stream.
 */

/** The non-blank lines of a byte (or text) stream, without their `\n` / `\r\n`. */
export async function* splitLines(chunks: AsyncIterable<Uint8Array | string>): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8', { fatal: false });
  let pending = '';
  for await (const chunk of chunks) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    let start = 0;
    let newline = pending.indexOf('\n', start);
    while (newline !== -1) {
      const line = pending.slice(start, newline).trim();
      if (line !== '') yield line;
      start = newline + 1;
      newline = pending.indexOf('\n', start);
    }
    pending = pending.slice(start);
  }
  const last = (pending + decoder.decode()).trim();
  if (last !== '') yield last;
}

/** Parsed values of an NDJSON stream, one per non-blank line; a bad line throws naming its number. */
export async function* ndjsonValues<T>(chunks: AsyncIterable<Uint8Array | string>): AsyncGenerator<T> {
  let line = 0;
  for await (const text of splitLines(chunks)) {
    line++;
    try {
      yield JSON.parse(text) as T;
    } catch (error) {
      throw new Error(`NDJSON value ${line} is not valid JSON: ${(error as Error).message}`, { cause: error });
    }
  }
}

/**
 * NDJSON lines re-framed as one JSON array (`[`, the lines separated by commas, `]`), as text
 * pieces of about `pieceBytes` for a writable stream. The lines are passed through, not re-parsed.
 */
export async function* jsonArrayText(lines: AsyncIterable<string>, pieceBytes = 64 * 1024): AsyncGenerator<string> {
  let piece = '[';
  let first = true;
  for await (const line of lines) {
    piece += first ? `\n${line}` : `,\n${line}`;
    first = false;
    if (piece.length >= pieceBytes) {
      yield piece;
      piece = '';
    }
  }
  yield `${piece}${first ? '' : '\n'}]\n`;
}
