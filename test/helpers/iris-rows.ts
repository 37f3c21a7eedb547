/** An iris row as an array of its four features in manifest order. */
export type IrisRow = [number, number, number, number];

/** Rows over the versicolor/virginica border, where the MLP (v1) and the forest (v2) disagree most. */
export function irisBorderRows(count: number): IrisRow[] {
  const rows: IrisRow[] = [];
  for (let i = 0; rows.length < count; i++) rows.push([5.5 + (i % 13) / 10, 2.4 + (i % 7) / 10, 4.4 + (i % 11) / 10, 1.3 + (i % 9) / 10]);
  return rows;
}

/** Iris rows as a CSV batch file (header of feature names, no id column), as a nightly export would write it. */
export function irisRowsCsv(rows: readonly IrisRow[]): string {
  return `sepal_length,sepal_width,petal_length,petal_width\n${rows.map((r) => r.join(',')).join('\n')}\n`;
}
