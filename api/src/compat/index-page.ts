import type { RedisClient } from '@onnx-batch/shared';

export interface IndexPageQuery {
  /** Continue after this id (null: from the first). */
  after: string | null;
  limit: number;
  order: 'asc' | 'desc';
}

/**
 * A page of the items a sorted set of ids names (a tenant's files or batches), after `after` in
 * `order`: each id is loaded, those whose item is gone are removed from the set on the way, and
 * those `keep` refuses are skipped. An `after` no longer in the set answers an empty page.
 */
export async function pageOfIndex<T>(
  redis: RedisClient,
  index: string,
  query: IndexPageQuery,
  load: (id: string) => Promise<T | null>,
  keep: (item: T) => boolean = () => true,
): Promise<{ items: T[]; hasMore: boolean }> {
  const items: T[] = [];
  let start = 0;
  if (query.after !== null) {
    const rank = query.order === 'desc' ? await redis.zrevrank(index, query.after) : await redis.zrank(index, query.after);
    if (rank === null) return { items, hasMore: false };
    start = rank + 1;
  }
  const step = Math.max(32, query.limit + 1);
  for (;;) {
    const stop = start + step - 1;
    const ids = query.order === 'desc' ? await redis.zrevrange(index, start, stop) : await redis.zrange(index, String(start), String(stop));
    for (const id of ids) {
      const item = await load(id);
      if (item === null) {
        await redis.zrem(index, id); // the ranks after it move up by one
        continue;
      }
      start++;
      if (!keep(item)) continue;
      if (items.length === query.limit) return { items, hasMore: true };
      items.push(item);
    }
    if (ids.length < step) return { items, hasMore: false };
  }
}
