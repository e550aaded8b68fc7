// Small helpers shared by the overhead sections: repeated runs, how far two
// runs of the same measurement disagree, and fixed-width table lines.

/** Relative spread of repeated measurements: (max - min) / min, 0 when there is one run. */
export function spread(values: readonly number[]): number {
  const ok = values.filter((v) => Number.isFinite(v));
  if (ok.length < 2) return 0;
  const lo = Math.min(...ok);
  const hi = Math.max(...ok);
  return lo > 0 ? (hi - lo) / lo : 0;
}

/** Median and worst relative spread over the cells of a section (a one-line noise summary). */
export function noiseSummary(spreads: readonly number[]): { medianSpread: number; maxSpread: number } {
  if (spreads.length === 0) return { medianSpread: 0, maxSpread: 0 };
  const s = [...spreads].sort((a, b) => a - b);
  return {
    medianSpread: round(s[Math.floor((s.length - 1) / 2)]!, 3),
    maxSpread: round(s[s.length - 1]!, 3),
  };
}

export function round(v: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** "a / b" for the runs of one figure. */
export function runs(values: readonly (number | null)[], digits = 1): string {
  return values.map((v) => (v === null || !Number.isFinite(v) ? '-' : v.toFixed(digits))).join(' / ');
}

/** Sorted-array percentile (0..100), nearest rank. */
export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export interface Table {
  header: string[];
  rows: Array<Array<string | number>>;
}

/** A GitHub-style markdown table with padded columns (prints well in a terminal too). */
export function formatTable(t: Table): string {
  const cells = [t.header, ...t.rows.map((r) => r.map(String))];
  const widths = t.header.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const line = (r: string[]) => '| ' + r.map((v, c) => v.padEnd(widths[c]!)).join(' | ') + ' |';
  return [
    line(t.header),
    '| ' + widths.map((w) => '-'.repeat(w)).join(' | ') + ' |',
    ...cells.slice(1).map(line),
  ].join('\n');
}

export function say(text: string): void {
  process.stdout.write(text + '\n');
}
