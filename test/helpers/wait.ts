// Polling, the one way tests wait for something that happens asynchronously
// (a scrape, a KV event, a release, a lease handover).

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls `probe` until it returns a truthy value and resolves with that value
 * (`true` for a boolean check; a probe returning `cond && value` hands the
 * value back). A probe that throws counts as "not yet". After `timeoutMs`
 * it rejects naming `what` and the last error. `probe` may be synchronous.
 */
export async function eventually<T>(
  probe: () => T | Promise<T>,
  timeoutMs = 5_000,
  what = 'condition',
  pollMs = 25,
): Promise<Exclude<T, false | undefined | null | 0 | ''>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v as Exclude<T, false | undefined | null | 0 | ''>;
    } catch (e) {
      lastError = e;
    }
    if (Date.now() > deadline) {
      const why = lastError ? ` (last error: ${(lastError as Error).message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await sleep(pollMs);
  }
}
