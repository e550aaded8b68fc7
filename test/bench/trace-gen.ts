// `npm run bench -- trace-gen --out FILE [--seed N] [--duration S] [--sessions-per-s R]`
//
// Writes a Mooncake-format JSONL trace (sim/trace-gen.ts: chat
// conversations, tool-agent loops and one-shot requests on shared system
// prompts) for `npm run bench -- routing --trace FILE`, and prints what it
// holds: requests, mean lengths, and the share of prompt tokens an infinite
// cache could reuse.
import { writeFileSync } from 'node:fs';
import { DEFAULT_TRACE_SHAPE, generateTrace, traceJsonl } from './sim/trace-gen.js';
import type { TraceRecord } from './sim/trace.js';

function arg(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

function num(args: string[], flag: string, def: number): number {
  const v = arg(args, flag);
  if (v === undefined) return def;
  const n = Number(v);
  if (!(n > 0)) throw new Error(`${flag} needs a number > 0, got "${v}"`);
  return n;
}

/** Share of prompt tokens in leading blocks some earlier request already had (infinite cache). */
export function reusableShare(records: readonly TraceRecord[], blockTokens: number): number {
  const seen = new Set<string>();
  let reuse = 0;
  let total = 0;
  for (const r of records) {
    let prefix = '';
    let leading = true;
    for (let i = 0; i < r.hash_ids.length; i++) {
      prefix += `${r.hash_ids[i]},`;
      const tokens = Math.min(blockTokens, r.input_length - i * blockTokens);
      if (leading && seen.has(prefix)) reuse += tokens;
      else leading = false;
      seen.add(prefix);
    }
    total += r.input_length;
  }
  return total === 0 ? 0 : reuse / total;
}

export async function run(args: string[]): Promise<void> {
  const out = arg(args, '--out');
  if (!out) throw new Error('usage: trace-gen --out FILE [--seed N] [--duration S] [--sessions-per-s R]');
  const seed = num(args, '--seed', 1);
  const shape = {
    ...DEFAULT_TRACE_SHAPE,
    durationS: num(args, '--duration', DEFAULT_TRACE_SHAPE.durationS),
    sessionsPerS: num(args, '--sessions-per-s', DEFAULT_TRACE_SHAPE.sessionsPerS),
  };
  const records = generateTrace(seed, shape);
  writeFileSync(out, traceJsonl(records));
  const n = records.length;
  const span = (records[n - 1]!.timestamp - records[0]!.timestamp) / 1000;
  const meanIn = records.reduce((a, r) => a + r.input_length, 0) / n;
  const meanOut = records.reduce((a, r) => a + r.output_length, 0) / n;
  process.stdout.write(
    `wrote ${out}: ${n} requests over ${span.toFixed(1)} s (${(n / span).toFixed(2)} req/s), ` +
      `mean input ${Math.round(meanIn)} / output ${Math.round(meanOut)} tokens, ` +
      `reusable prefix share ${(reusableShare(records, shape.blockTokens) * 100).toFixed(1)}%\n`,
  );
}
