/** Distinct values remembered; the memo starts over beyond it. */
const MEMO_LIMIT = 65_536;
const memo = new Map<number, string>();

/**
 * A finite float as results print it: at float32 precision, 6 significant digits (C's `%g`),
 * shortest form (`0.96`, not `0.9600001573562622`; `1`, not `1.0000001192092896`). Memoised:
 * most models repeat values (a forest's vote fractions, saturated probabilities).
 */
export function formatFloat(value: number): string {
  let text = memo.get(value);
  if (text === undefined) {
    text = Number.isInteger(value) && Math.abs(value) < 1e15 ? String(value) : String(Number(value.toPrecision(6)));
    if (memo.size >= MEMO_LIMIT) memo.clear();
    memo.set(value, text);
  }
  return text;
}
