// Durations on the command line: `500ms`, `30s`, `2m`, `1h`, or a bare
// number of milliseconds.
const units: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

export function parseDurationMs(text: string, flag = 'duration'): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) throw new Error(`${flag}: expected a duration like 500ms, 30s or 2m, got "${text}"`);
  return Math.round(Number(m[1]) * units[m[2] ?? 'ms']!);
}
