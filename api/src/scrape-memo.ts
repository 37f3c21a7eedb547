/** Reports read once per scrape are shared by every gauge of that scrape. */
const SCRAPE_MEMO_MS = 1000;

/** `read`, called at most once a second: the gauges of one scrape share its answer. */
export function memoPerScrape<T>(read: () => Promise<T>): () => Promise<T> {
  let memo: { at: number; value: Promise<T> } | null = null;
  return () => {
    if (!memo || Date.now() - memo.at > SCRAPE_MEMO_MS) memo = { at: Date.now(), value: read() };
    return memo.value;
  };
}
