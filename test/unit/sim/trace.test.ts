// Trace replay: the Mooncake JSONL parser reports every bad line by number,
// replayed prompts share exactly the prefixes their block ids share, and the
// generator's block ids keep the format's meaning.
import { describe, expect, it } from 'vitest';
import { parseTrace, traceRun, TraceError, type TraceRecord } from '../../bench/sim/trace.js';
import { generateTrace, traceJsonl, DEFAULT_TRACE_SHAPE } from '../../bench/sim/trace-gen.js';
import { reusableShare } from '../../bench/trace-gen.js';
import { BLOCK_TOKENS } from '../../bench/sim/workloads.js';

const line = (o: unknown) => JSON.stringify(o);

describe('parseTrace', () => {
  it('reads records and allows blank lines', () => {
    const text = [
      line({ timestamp: 0, input_length: 600, output_length: 10, hash_ids: [1, 2] }),
      '',
      line({ timestamp: 27.5, input_length: 512, output_length: 1, hash_ids: [1], extra: 'ignored' }),
    ].join('\n');
    expect(parseTrace(text, 't.jsonl')).toEqual([
      { timestamp: 0, input_length: 600, output_length: 10, hash_ids: [1, 2] },
      { timestamp: 27.5, input_length: 512, output_length: 1, hash_ids: [1] },
    ]);
  });

  it('names every bad line with its number and what was expected', () => {
    const text = [
      line({ timestamp: 0, input_length: 600, output_length: 10, hash_ids: [1, 2] }),
      '{not json',
      line({ timestamp: -1, input_length: 10, output_length: 1, hash_ids: [1] }),
      line({ timestamp: 1, input_length: 0, output_length: 1, hash_ids: [] }),
      line({ timestamp: 1, input_length: 10, output_length: 1.5, hash_ids: [1] }),
      line({ timestamp: 1, input_length: 10, output_length: 1, hash_ids: ['a'] }),
      line({ timestamp: 1, input_length: 1100, output_length: 1, hash_ids: [1, 2] }),
      line([1, 2]),
    ].join('\n');
    let err: unknown;
    try {
      parseTrace(text, 'bad.jsonl');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(TraceError);
    const msg = (err as Error).message;
    expect(msg).toContain('bad.jsonl: 7 bad line(s)');
    expect(msg).toMatch(/line 2: not JSON/);
    expect(msg).toMatch(/line 3: timestamp: expected a number of ms >= 0, got -1/);
    expect(msg).toMatch(/line 4: input_length: expected an integer >= 1, got 0/);
    expect(msg).toMatch(/line 5: output_length: expected an integer >= 1, got 1.5/);
    expect(msg).toMatch(/line 6: hash_ids: expected an array of integers >= 0/);
    expect(msg).toMatch(/line 7: hash_ids: 2 ids, but input_length 1100 at 512 tokens a block needs 3/);
    expect(msg).toMatch(/line 8: expected a JSON object/);
    expect(msg).not.toMatch(/line 1:/);
  });

  it('checks the id count against --block-tokens', () => {
    const text = line({ timestamp: 0, input_length: 600, output_length: 10, hash_ids: [1, 2, 3] });
    expect(() => parseTrace(text, 't')).toThrow(/needs 2/);
    expect(parseTrace(text, 't', 256)).toHaveLength(1);
  });

  it('rejects an empty trace', () => {
    expect(() => parseTrace('\n\n', 'empty.jsonl')).toThrow(/empty.jsonl: no records/);
  });
});

describe('traceRun', () => {
  const recs: TraceRecord[] = [
    { timestamp: 2000, input_length: 1024 + 100, output_length: 5, hash_ids: [7, 8, 9] },
    { timestamp: 1000, input_length: 1024 + 300, output_length: 3, hash_ids: [7, 8, 10] },
    { timestamp: 3000, input_length: 400, output_length: 2, hash_ids: [8] },
  ];

  it('scales arrivals, sorts them, and keeps lengths', () => {
    const run = traceRun(recs, { timeScale: 0.5, blockTokens: 512, startS: 1 });
    expect(run.requests.map((r) => r.arrivalS)).toEqual([1, 1.5, 2]);
    expect(run.requests.map((r) => r.promptTokens)).toEqual([1324, 1124, 400]);
    expect(run.requests.map((r) => r.outputTokens)).toEqual([3, 5, 2]);
    expect(run.windowStartS).toBe(1);
    expect(run.windowEndS).toBeCloseTo(2.001, 9);
    expect(run.requests.every((r) => r.measured)).toBe(true);
    expect(() => traceRun(recs, { timeScale: 0, blockTokens: 512 })).toThrow(/time-scale/);
  });

  it('gives equal leading ids equal leading text, and nothing more', () => {
    const [a, b, c] = traceRun(recs, { timeScale: 1, blockTokens: 512 }).requests;
    // a = [7, 8, 10], b = [7, 8, 9]: two shared 512-token blocks = 16 blocks of 64 tokens.
    let shared = 0;
    while (shared < a!.hashes.length && a!.hashes[shared] === b!.hashes[shared]) shared++;
    expect(shared).toBe((2 * 512) / BLOCK_TOKENS);
    expect(a!.req.promptText.slice(0, 4096)).toBe(b!.req.promptText.slice(0, 4096));
    // c starts with block 8, not 7: no shared prefix even though block 8 appears in both.
    expect(c!.hashes[0]).not.toBe(a!.hashes[0]);
    // The second block's text is block 8's text wherever it appears.
    expect(c!.req.promptText.slice(0, 400 * 4)).toBe(a!.req.promptText.slice(2048, 2048 + 1600));
  });
});

describe('generateTrace', () => {
  const shape = { ...DEFAULT_TRACE_SHAPE, durationS: 60 };
  const recs = generateTrace(3, shape);

  it('is deterministic for a seed and valid for the parser', () => {
    expect(generateTrace(3, shape)).toEqual(recs);
    expect(generateTrace(4, shape)).not.toEqual(recs);
    const back = parseTrace(traceJsonl(recs), 'gen');
    expect(back).toEqual(recs);
    for (let i = 1; i < recs.length; i++)
      expect(recs[i]!.timestamp).toBeGreaterThanOrEqual(recs[i - 1]!.timestamp);
    expect(recs.every((r) => r.timestamp < 60_000)).toBe(true);
    expect(recs.length / 60).toBeGreaterThan(4);
  });

  it('shares system prompts across sessions and extends each conversation', () => {
    // Every shared system prompt's full blocks lead some prompt more than once.
    const firsts = new Map<number, number>();
    for (const r of recs) firsts.set(r.hash_ids[0]!, (firsts.get(r.hash_ids[0]!) ?? 0) + 1);
    const systems = shape.chatSystems + shape.agentSystems + shape.ragSystems;
    expect(firsts.size).toBe(systems);
    // Turns extend their context: many prompts start with all full blocks of an earlier, shorter one.
    const full = (r: TraceRecord) => r.hash_ids.slice(0, Math.floor(r.input_length / 512)).join(',');
    const seen = new Set<string>();
    let extends_ = 0;
    for (const r of recs) {
      for (let k = r.hash_ids.length - 1; k > shape.agentSystemTokens / 512; k--)
        if (seen.has(r.hash_ids.slice(0, k).join(','))) {
          extends_++;
          break;
        }
      seen.add(full(r));
    }
    expect(extends_).toBeGreaterThan(recs.length / 5);
    const share = reusableShare(recs, 512);
    expect(share).toBeGreaterThan(0.5);
    expect(share).toBeLessThan(0.98);
  });

  it('never reuses the id of a partly filled block for different content', () => {
    // A partial last block's id must not appear as a full block anywhere.
    const partial = new Set<number>();
    const fullIds = new Set<number>();
    for (const r of recs) {
      const nFull = Math.floor(r.input_length / 512);
      r.hash_ids.forEach((id, i) => (i < nFull ? fullIds : partial).add(id));
    }
    for (const id of partial) expect(fullIds.has(id)).toBe(false);
  });
});
