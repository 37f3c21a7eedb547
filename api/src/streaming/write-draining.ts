import { once } from 'node:events';
import type { Writable } from 'node:stream';

/**
 * Writes, and when the stream asks to wait, waits for it to drain or close. Both listeners are
 * removed as soon as either fires: a long download waits thousands of times, and a listener left
 * behind each time would pile up on the response.
 */
export async function writeDraining(out: Writable, bytes: string | Uint8Array): Promise<void> {
  if (out.write(bytes)) return;
  const settled = new AbortController();
  try {
    await Promise.race([once(out, 'drain', { signal: settled.signal }), once(out, 'close', { signal: settled.signal })]);
  } finally {
    settled.abort();
  }
}
