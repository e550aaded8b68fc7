// Request traces in the Mooncake format (one JSON object a line:
// `timestamp` ms, `input_length` and `output_length` tokens, `hash_ids`:
// ids of the prompt's fixed-size token blocks, equal ids = equal content,
// so a shared prefix is a shared leading run of ids). Public KV-routing
// traces and benchmark tools use this format.
//
// Replaying: every block id becomes a fixed piece of text (4 characters a
// token, a head naming the id, then a slice of one random pool chosen by
// the id), a prompt is its blocks' text cut to `input_length` tokens. So
// equal leading ids give an equal leading text, and the router and the
// simulated model servers hash exactly the prefixes the trace shares.
import { textBlockHashes } from '../../../src/request/prefix-hash.js';
import { estimateTokens } from '../../../src/request/tokens.js';
import { Rng, randomText } from './rng.js';
import { BLOCK_TOKENS, MODEL, type GeneratedRun } from './workloads.js';
import type { SimRequest } from './workload-types.js';

export interface TraceRecord {
  /** Arrival, ms from the trace's origin. */
  timestamp: number;
  input_length: number;
  output_length: number;
  hash_ids: number[];
}

/** Mooncake's block size; `--block-tokens` overrides it. */
export const DEFAULT_TRACE_BLOCK_TOKENS = 512;

const CHARS_PER_TOKEN = 4;

function isNonNegInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0;
}

/** Why one parsed line is not a trace record, or undefined when it is one. */
function recordProblem(o: unknown, blockTokens: number): string | undefined {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return 'expected a JSON object';
  const r = o as Record<string, unknown>;
  const t = r.timestamp;
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0)
    return `timestamp: expected a number of ms >= 0, got ${JSON.stringify(t)}`;
  if (!isNonNegInt(r.input_length) || r.input_length < 1)
    return `input_length: expected an integer >= 1, got ${JSON.stringify(r.input_length)}`;
  if (!isNonNegInt(r.output_length) || r.output_length < 1)
    return `output_length: expected an integer >= 1, got ${JSON.stringify(r.output_length)}`;
  const ids = r.hash_ids;
  if (!Array.isArray(ids) || !ids.every(isNonNegInt)) return 'hash_ids: expected an array of integers >= 0';
  const need = Math.ceil(r.input_length / blockTokens);
  if (ids.length !== need)
    return `hash_ids: ${ids.length} ids, but input_length ${r.input_length} at ${blockTokens} tokens a block needs ${need} (see --block-tokens)`;
  return undefined;
}

export class TraceError extends Error {}

/**
 * Parses a JSONL trace. Blank lines are allowed; any other line that is not
 * a valid record makes the whole parse fail, naming every bad line (up to
 * 20) with its number, so nothing is silently dropped.
 */
export function parseTrace(
  text: string,
  source: string,
  blockTokens = DEFAULT_TRACE_BLOCK_TOKENS,
): TraceRecord[] {
  const out: TraceRecord[] = [];
  const bad: string[] = [];
  let badCount = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let problem: string | undefined;
    let o: unknown;
    try {
      o = JSON.parse(line);
      problem = recordProblem(o, blockTokens);
    } catch (e) {
      problem = `not JSON (${(e as Error).message})`;
    }
    if (problem) {
      badCount++;
      if (bad.length < 20) bad.push(`  line ${i + 1}: ${problem}`);
      continue;
    }
    const r = o as TraceRecord;
    out.push({
      timestamp: r.timestamp,
      input_length: r.input_length,
      output_length: r.output_length,
      hash_ids: r.hash_ids,
    });
  }
  if (badCount > 0) {
    const more = badCount > bad.length ? `\n  ... and ${badCount - bad.length} more` : '';
    throw new TraceError(`${source}: ${badCount} bad line(s):\n${bad.join('\n')}${more}`);
  }
  if (out.length === 0) throw new TraceError(`${source}: no records`);
  return out;
}

export interface ReplayOptions {
  /** Arrival time = timestamp * timeScale (below 1 compresses the trace: more load). */
  timeScale: number;
  /** Tokens per trace block (the hash_ids granularity). */
  blockTokens: number;
  /** Seconds before the first arrival (the scrape loop settles). */
  startS?: number;
}

/** Deterministic text for each block id: the same id always gives the same text. */
class BlockText {
  private readonly pool: string;
  private readonly cache = new Map<number, string>();
  constructor(private readonly chars: number) {
    this.pool = randomText(new Rng(0x7ace), 1 << 20);
  }
  of(id: number): string {
    let t = this.cache.get(id);
    if (t !== undefined) return t;
    const head = `[b${id}] `;
    const body = Math.max(0, this.chars - head.length);
    // A multiplicative hash of the id picks the slice, so neighbouring ids differ.
    const off = Math.imul(id + 1, 0x9e3779b1) >>> 0;
    const start = off % Math.max(1, this.pool.length - body);
    t = head + this.pool.slice(start, start + body);
    this.cache.set(id, t);
    return t;
  }
}

/** The simulator's requests for a trace: all measured, arrivals scaled. */
export function traceRun(records: readonly TraceRecord[], opts: ReplayOptions): GeneratedRun {
  if (!(opts.timeScale > 0)) throw new TraceError('--time-scale needs a number > 0');
  const startS = opts.startS ?? 1;
  const sorted = [...records].sort((a, b) => a.timestamp - b.timestamp);
  const t0 = sorted[0]!.timestamp;
  const blocks = new BlockText(opts.blockTokens * CHARS_PER_TOKEN);
  // Equal id lists give equal prompts: hash each distinct prompt once.
  const hashCache = new Map<string, string[]>();
  const requests: SimRequest[] = [];
  let last = startS;
  for (let i = 0; i < sorted.length; i++) {
    const r = sorted[i]!;
    const parts: string[] = [];
    for (const id of r.hash_ids) parts.push(blocks.of(id));
    const promptText = parts.join('').slice(0, r.input_length * CHARS_PER_TOKEN);
    const key = `${r.input_length}:${r.hash_ids.join(',')}`;
    let hashes = hashCache.get(key);
    if (!hashes) {
      hashes = textBlockHashes(promptText, MODEL, BLOCK_TOKENS, Number.MAX_SAFE_INTEGER);
      hashCache.set(key, hashes);
    }
    const arrivalS = startS + ((r.timestamp - t0) / 1000) * opts.timeScale;
    last = arrivalS;
    requests.push({
      id: i,
      arrivalS,
      req: {
        requestId: `trace-${i}`,
        model: MODEL,
        apiType: 'completions',
        promptText,
        promptTokens: estimateTokens(promptText),
        stream: true,
        headers: {},
      },
      promptTokens: estimateTokens(promptText),
      outputTokens: r.output_length,
      hashes,
      measured: true,
    });
  }
  // The window ends just after the last arrival (a one-request trace still has a window).
  return { requests, windowStartS: startS, windowEndS: Math.max(last, startS) + 1e-3 };
}

/** Offered load of a replay: requests per second of the scaled window. */
export function offeredQps(run: GeneratedRun): number {
  const span = run.windowEndS - run.windowStartS;
  return span > 0 ? run.requests.length / span : run.requests.length;
}
