import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Rate limits count per minute of the clock: a test that spends a budget must not see the
 * minute roll over half-way. Waits for the next minute when fewer than `marginMs` are left.
 */
export async function clearOfMinuteEnd(marginMs = 5000): Promise<void> {
  const left = 60_000 - (Date.now() % 60_000);
  if (left < marginMs) await sleep(left + 50);
}
