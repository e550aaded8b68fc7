// `npm run bench -- scheduler [--quick] [--profile NAME] [--endpoints 8,32] [--tokens 1024,8192] [--indexer compute|cached] [--messages-bytes] [--body-reader]`
//   --messages-bytes: requests carry the body's own messages bytes (LLMRequest.messagesJson), as a
//   body reader that keeps them gives them; the /match_sort request then splices them in.
//   --body-reader: requests come from the ext_proc path's body reader (scanOpenAIRequest, outside
//   the clock as the parse always is): the prompt as UTF-8 rendered on demand, the messages bytes.
// `npm run bench -- scheduler --gie [--quick] [--endpoints 32] [--tokens 8192] [--repeats 3] [--cpu N]`:
//   the GIE default profile side by side with GIE v1.5.0's own scheduler (scheduler-gie.ts)
//
// Decision time of the real Director over a MemoryStateStore, per example
// profile (examples/profiles/*.yaml), as INTERFACES.md defines it:
//   decision = taking the endpoint snapshot + prefix hashing and matching +
//              running the profile (+ the pick's commit to the store);
//   the body is parsed before the clock starts; one Node thread; warm-up
//   first, then every decision timed on its own.
// Workload `shared-prefix`: 50 system prompts of half the prompt length,
// random suffixes, chat bodies, 4 characters per token; before each
// decision every endpoint gets new signals (waiting 0..20, KV usage 0..1).
//
// KV-cache aware profiles: the Director asks a CacheIndexerClient for hit
// rates. Here that client is InProcessIndexer, which keeps the client-side
// CPU of a real call (serialising the /match_sort body with the whole
// prompt, parsing the JSON answer) and leaves out only the network round
// trip, measured by its own benchmark. `--indexer compute` (default): the
// answer is COMPUTED inside the timed decision from an in-memory block
// index (the whole prompt's numeric block keys in 16-token blocks, walked in
// the typed-array index of src/state/prefix-index.ts)
// -- the cache-indexer's own work done on the EPP's core, so an upper
// bound; the `EPP p50` column leaves that work (the answer computed and
// written) out of each decision, as production does. `--indexer cached`: the answer was computed and its JSON
// text written before the clock (the EPP-only cost: the text arrives, the EPP parses it). Each pick's prompt blocks are then added to the index for
// the chosen (prefill) pod, outside the clock, as KV events would be.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Director, type PickTicket } from '../../src/director/director.js';
import { MAX_MODEL_CHARS, parseOpenAIRequest } from '../../src/request/openai.js';
import { scanOpenAIRequest } from '../../src/request/openai-scan.js';
import type { LLMRequest } from '../../src/scheduling/types.js';
import type { StateStore } from '../../src/state/store.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import type { LoadedConfig } from '../../src/config/endpoint-picker-config.js';
import { PrefixIndex } from '../../src/state/prefix-index.js';
import { aggregatedEndpoints, pdEndpoints } from './sim/cluster-layout.js';
import { exampleProfileNames, isPdProfile, loadExampleProfile } from './sim/configs.js';
import { InProcessIndexer, answerJson, hitRatesFromKeys, requestBlockKeys } from './sim/indexer-stub.js';
import { Rng, percentileSorted, randomText } from './sim/rng.js';

export interface SchedulerRow {
  profile: string;
  workload: 'shared-prefix';
  endpoints: number;
  promptTokens: number;
  p50Us: number;
  p99Us: number;
  decisionsPerSecPerCore: number;
}

export interface CellResult extends SchedulerRow {
  scheduleP50Us: number;
  /** p50 of the decision minus the in-process indexer's own work (its answer, computed and written). */
  eppP50Us: number;
  /**
   * p50 of each decision's process CPU time (getrusage: time other processes
   * took the core is not in it, GC threads are): what a busy shared machine
   * moves least.
   */
  cpuP50Us: number;
  meanUs: number;
  /** Timed decisions per second of process CPU spent in them (getrusage: preemption excluded, GC threads included). */
  decisionsPerCpuSecond: number;
}

const SYSTEM_PROMPTS = 50;
export type IndexerMode = 'compute' | 'cached';
const MODEL = 'bench-model';
/** Picks kept open before the oldest is released, so in-flight counts are not all zero. */
const OPEN_PICKS = 32;

export function listArg(args: string[], flag: string, def: number[]): number[] {
  const i = args.indexOf(flag);
  if (i < 0) return def;
  const v = args[i + 1];
  if (!v) throw new Error(`${flag} needs a comma-separated list of numbers`);
  const out = v.split(',').map(Number);
  if (out.some((x) => !Number.isInteger(x) || x <= 0))
    throw new Error(`${flag}: expected positive integers, got "${v}"`);
  return out;
}

export function stringArg(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i < 0 ? undefined : args[i + 1];
}

/** The shared-prefix workload of one cell: system prompts and a text pool for suffixes. */
export class SharedPrefixBodies {
  private readonly systems: string[];
  private readonly pool: string;
  private readonly suffixChars: number;

  constructor(
    private readonly rng: Rng,
    promptTokens: number,
  ) {
    const half = promptTokens * 2; // half the prompt, 4 chars per token
    this.systems = Array.from(
      { length: SYSTEM_PROMPTS },
      (_, g) => `system prompt ${g}: ` + randomText(rng, half),
    );
    this.suffixChars = half;
    this.pool = randomText(rng, Math.max(4 * half, 64 * 1024));
  }

  body(i: number): string {
    const g = Math.floor(this.rng.next() * SYSTEM_PROMPTS);
    const off = Math.floor(this.rng.next() * (this.pool.length - this.suffixChars));
    // A unique head makes every suffix new to the caches.
    const suffix =
      `q${i}-${Math.floor(this.rng.next() * 1e9)} ` + this.pool.slice(off, off + this.suffixChars);
    return JSON.stringify({
      model: MODEL,
      messages: [
        { role: 'system', content: this.systems[g] },
        { role: 'user', content: suffix },
      ],
    });
  }
}

/** One cell (profile x endpoints x prompt length); `makeStore` swaps the MemoryStateStore (overhead bench: Redis). */
export async function benchCell(
  name: string,
  loaded: LoadedConfig,
  endpointCount: number,
  promptTokens: number,
  warmup: number,
  timed: number,
  seed: number,
  indexerMode: IndexerMode,
  makeStore?: () => Promise<StateStore>,
  more: {
    /** The request bodies (warm-up first) instead of generated ones (the side-by-side run with GIE). */
    bodies?: readonly string[];
    /**
     * Give each request the body's own `messages` bytes (LLMRequest.messagesJson), as a body
     * reader that keeps them does, so the /match_sort request splices them instead of serialising.
     */
    messagesBytes?: boolean;
    /** Read each body with the ext_proc path's one-pass reader (scanOpenAIRequest) instead of parseOpenAIRequest. */
    bodyReader?: boolean;
  } = {},
): Promise<CellResult> {
  const givenBodies = more.bodies;
  const rng = new Rng(seed);
  const pd = isPdProfile(loaded);
  // PD: groups of one leader, one prefill and two decode pods.
  const endpoints = pd
    ? pdEndpoints({
        groups: Math.max(1, Math.floor(endpointCount / 4)),
        prefillPerGroup: 1,
        decodePerGroup: 2,
      }).all
    : aggregatedEndpoints(endpointCount);
  const store = makeStore ? await makeStore() : new MemoryStateStore();
  await store.replaceEndpoints(endpoints);
  // The KV cache of each endpoint holds at most this many blocks (GIE's default LRU size).
  const index = new PrefixIndex();
  const KV_BLOCKS_PER_ENDPOINT = 31_250;
  const indexer = new InProcessIndexer(index, { blockSizeTokens: 16 });
  const endpointIds = endpoints.map((e) => e.id);
  const director = new Director({ store, profile: loaded.profile, indexer, random: rng.next });
  const bodies = new SharedPrefixBodies(rng, promptTokens);
  const open: PickTicket[] = [];
  const samples = new Float64Array(timed);
  const scheduleSamples = new Float64Array(timed);
  const eppSamples = new Float64Array(timed);
  const cpuSamples = new Float64Array(timed);
  const total = warmup + timed;
  let cpuUs = 0;
  try {
    for (let i = 0; i < total; i++) {
      // --- outside the clock: parse the body, vary the signals ---
      const text = givenBodies ? givenBodies[i]! : bodies.body(i);
      const scanned = more.bodyReader
        ? scanOpenAIRequest('chat', Buffer.from(text), {}, `req-${i}`, MAX_MODEL_CHARS)
        : undefined;
      if (more.bodyReader && !scanned) throw new Error('the body reader gave up on a benchmark body');
      const req: LLMRequest =
        scanned?.request ?? parseOpenAIRequest('/v1/chat/completions', text, {}, `req-${i}`).request;
      if (more.messagesBytes && !scanned) {
        // The bodies are {"model":...,"messages":[...]}: the array runs to the last '}'.
        const bytes = Buffer.from(text);
        const start = bytes.indexOf('"messages":') + '"messages":'.length;
        const view = bytes.subarray(start, bytes.length - 1);
        req.messagesJson = () => view;
      }
      const now = Date.now();
      for (const e of endpoints) {
        await store.writeSignals(e.id, {
          waitingQueueSize: rng.int(0, 20),
          runningRequests: rng.int(0, 64),
          kvCacheUsage: rng.next(),
          updatedAtMs: now,
        });
      }
      let keys: Float64Array | undefined;
      if (director.needs.indexer && indexerMode === 'cached') {
        const k = requestBlockKeys(req, 16);
        // The answer as it reaches the EPP: its text (the indexer computes and writes it in its process).
        const answer = answerJson(hitRatesFromKeys(index, k, endpointIds));
        indexer.answerTextWith = () => answer;
        keys = k;
      }
      // --- the decision ---
      indexer.lastIndexerUs = 0;
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const decision = await director.pick(req);
      const us = (performance.now() - t0) * 1000;
      const cpu = process.cpuUsage(c0);
      // --- outside the clock: KV events, releases ---
      if (director.needs.indexer) {
        const last = indexer.lastKeys;
        keys ??= last && last.requestId === req.requestId ? last.keys : requestBlockKeys(req, 16);
        const holder = decision.result.pd?.prefill.endpoint.id ?? decision.result.primary.endpoint.id;
        index.record(holder, keys, KV_BLOCKS_PER_ENDPOINT);
      }
      open.push(decision.ticket);
      if (open.length > OPEN_PICKS) await open.shift()!.release();
      if (i >= warmup) {
        cpuUs += cpu.user + cpu.system;
        cpuSamples[i - warmup] = cpu.user + cpu.system;
        samples[i - warmup] = us;
        scheduleSamples[i - warmup] = decision.scheduleUs;
        eppSamples[i - warmup] = us - indexer.lastIndexerUs;
      }
    }
  } finally {
    await indexer.close();
    await store.close();
  }
  let sum = 0;
  for (const v of samples) sum += v;
  const meanUs = sum / timed;
  samples.sort();
  scheduleSamples.sort();
  eppSamples.sort();
  cpuSamples.sort();
  return {
    profile: name,
    workload: 'shared-prefix',
    endpoints: endpointCount,
    promptTokens,
    p50Us: round1(percentileSorted(samples, 50)),
    p99Us: round1(percentileSorted(samples, 99)),
    // One thread runs the decisions back to back: a core does 1/mean of them per second.
    decisionsPerSecPerCore: Math.round(1e6 / meanUs),
    scheduleP50Us: round1(percentileSorted(scheduleSamples, 50)),
    eppP50Us: round1(percentileSorted(eppSamples, 50)),
    cpuP50Us: round1(percentileSorted(cpuSamples, 50)),
    meanUs: round1(meanUs),
    decisionsPerCpuSecond: Math.round((timed * 1e6) / Math.max(1, cpuUs)),
  };
}

function round1(v: number): number {
  return Math.round(v * 10) / 10;
}

function pad(s: string | number, n: number, right = false): string {
  const t = String(s);
  return right ? t.padEnd(n) : t.padStart(n);
}

export async function run(args: string[]): Promise<void> {
  if (args.includes('--gie')) {
    const { runSideBySide } = await import('./scheduler-gie.js');
    return runSideBySide(args);
  }
  const quick = args.includes('--quick');
  const endpointsList = listArg(args, '--endpoints', [8, 32, 128]);
  const tokensList = listArg(args, '--tokens', [1024, 8192, 32768]);
  const onlyProfile = stringArg(args, '--profile');
  const indexerMode = (stringArg(args, '--indexer') ?? 'compute') as IndexerMode;
  const messagesBytes = args.includes('--messages-bytes');
  const bodyReader = args.includes('--body-reader');
  if (indexerMode !== 'compute' && indexerMode !== 'cached')
    throw new Error('--indexer must be compute or cached');
  const warmup = quick ? 50 : 200;
  const timed = quick ? 200 : 1000;
  const names = exampleProfileNames().filter((n) => !onlyProfile || n === onlyProfile);
  if (names.length === 0) throw new Error(`no example profile named "${onlyProfile}" in examples/profiles`);

  const rows: CellResult[] = [];
  const skipped: Array<{ profile: string; error: string }> = [];
  process.stdout.write(
    `scheduler decision time (Director + MemoryStateStore, in-process indexer answer: ${indexerMode}${bodyReader ? ', requests from the body reader' : ''}), ${warmup} warm-up + ${timed} timed decisions per cell, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n` +
      `(EPP p50: the decision without the in-process indexer's own work, which the cache-indexer does in its own process;\n` +
      ` CPU p50: the decision's process CPU time, preemption by other processes left out)\n\n`,
  );
  process.stdout.write(
    `${pad('profile', 24, true)} ${pad('endpoints', 9)} ${pad('tokens', 7)} ${pad('p50 us', 9)} ${pad('p99 us', 9)} ${pad('sched p50', 9)} ${pad('EPP p50', 9)} ${pad('CPU p50', 9)} ${pad('dec/s/core', 11)}\n`,
  );
  let seed = 1;
  for (const name of names) {
    const outcome = loadExampleProfile(name);
    if (!outcome.ok) {
      skipped.push({ profile: name, error: outcome.error });
      process.stdout.write(`${pad(name, 24, true)} skipped: ${outcome.error}\n`);
      continue;
    }
    for (const n of endpointsList) {
      for (const t of tokensList) {
        const r = await benchCell(name, outcome.loaded, n, t, warmup, timed, seed++, indexerMode, undefined, {
          messagesBytes,
          bodyReader,
        });
        rows.push(r);
        process.stdout.write(
          `${pad(name, 24, true)} ${pad(n, 9)} ${pad(t, 7)} ${pad(r.p50Us.toFixed(1), 9)} ${pad(r.p99Us.toFixed(1), 9)} ${pad(r.scheduleP50Us.toFixed(1), 9)} ${pad(r.eppP50Us.toFixed(1), 9)} ${pad(r.cpuP50Us.toFixed(1), 9)} ${pad(r.decisionsPerSecPerCore, 11)}\n`,
        );
      }
    }
  }
  mkdirSync('bench-results', { recursive: true });
  const out: SchedulerRow[] = rows.map(
    ({ profile, workload, endpoints, promptTokens, p50Us, p99Us, decisionsPerSecPerCore }) => ({
      profile,
      workload,
      endpoints,
      promptTokens,
      p50Us,
      p99Us,
      decisionsPerSecPerCore,
    }),
  );
  const file =
    indexerMode === 'compute'
      ? 'bench-results/scheduler.json'
      : `bench-results/scheduler-indexer-${indexerMode}.json`;
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  const target = rows.filter((r) => r.endpoints === 32 && r.promptTokens === 8192);
  process.stdout.write('\ntarget (32 endpoints, 8k tokens): p50 <= 100 us and >= 5,000 decisions/s/core\n');
  for (const r of target) {
    const ok = r.p50Us <= 100 && r.decisionsPerSecPerCore >= 5000;
    process.stdout.write(
      `  ${pad(r.profile, 24, true)} p50 ${r.p50Us} us, ${r.decisionsPerSecPerCore}/s: ${ok ? 'met' : 'MISSED'}\n`,
    );
  }
  if (skipped.length > 0)
    process.stdout.write(
      `\nskipped (profile does not load in this build): ${skipped.map((s) => s.profile).join(', ')}\n`,
    );
  process.stdout.write(`wrote ${file}\n`);
}
