/** Rows arriving from a request body, and where the last one came from (for error messages). */
export interface RowSource {
  rows: AsyncIterable<unknown>;
  /** 1-based line of the row most recently yielded. */
  currentLine: () => number;
}
