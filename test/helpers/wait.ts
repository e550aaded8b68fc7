// Polling helpers shared by the process-level tests.

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Polls until `check` resolves true; rejects after `timeoutMs` naming `what`.
 * `pollMs` is the pause between checks (a check that scrapes an endpoint can
 * ask for a longer one).
 */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 5_000,
  what = 'condition',
  pollMs = 25,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(pollMs);
  }
}
