// `npm run bench -- scheduler-warm [--tokens 8192] [--endpoints 32] [--requests 64] [--fresh] [--answer-cache] [--pollute-mb 8]`
//
// The KV-aware decision of the scheduler bench (epp-kv-cache-aware, body reader, the indexer's
// answer text written before the clock, Director + MemoryStateStore, new signals before every
// decision) in a loop that does as little as it can between decisions, to tell the decision's own
// cost from what the work around it costs it (docs/benchmarks.md, scheduler round six):
//   default: `--requests` bodies read once and asked in turn, each answer fresh from the indexer
//     (the director's answer cache off: TTL 0), so the caches stay warm;
//   --fresh: a new body generated and read before each decision (as the scheduler bench does);
//   --answer-cache: the director's 500 ms answer cache on: the requests repeat, so every decision
//     after the first round finds its answer cached;
//   --pollute-mb N: N MB of random writes between decisions (20,000 of them), evicting the caches.
// 1,000 warm-up then 2,000 timed decisions; p50 of the wall time and of the process CPU time.
import { Director, type PickTicket } from '../../src/director/director.js';
import {
  CacheIndexerClient,
  matchSortBody,
  parseMatchSort,
} from '../../src/datalayer/cache-indexer-client.js';
import type { IndexerOutcome } from '../../src/datalayer/cache-indexer-client.js';
import { MAX_MODEL_CHARS } from '../../src/request/openai.js';
import { scanOpenAIRequest } from '../../src/request/openai-scan.js';
import type { LLMRequest } from '../../src/scheduling/types.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { listArg, SharedPrefixBodies } from './scheduler.js';
import { aggregatedEndpoints } from './sim/cluster-layout.js';
import { loadExampleProfile } from './sim/configs.js';
import { answerJson } from './sim/indexer-stub.js';
import { Rng, percentileSorted } from './sim/rng.js';

/** Answers with a text written before the call: what reaches the EPP (matchSortBody still built). */
class TextAnswers extends CacheIndexerClient {
  text = '';
  override async matchSort(
    _url: string,
    req: LLMRequest,
    candidates: readonly string[],
  ): Promise<IndexerOutcome> {
    matchSortBody(req, candidates);
    return { hitRates: parseMatchSort(this.text), status: 'ok', latencyMs: 0, answer: this.text };
  }
}

function read(text: string, id: string): LLMRequest {
  const scanned = scanOpenAIRequest('chat', Buffer.from(text), {}, id, MAX_MODEL_CHARS);
  if (!scanned) throw new Error('the body reader gave up on a benchmark body');
  return scanned.request;
}

export async function run(args: string[]): Promise<void> {
  const [tokens] = listArg(args, '--tokens', [8192]);
  const [endpointCount] = listArg(args, '--endpoints', [32]);
  const [requestCount] = listArg(args, '--requests', [64]);
  const fresh = args.includes('--fresh');
  const answerCache = args.includes('--answer-cache');
  const polluteAt = args.indexOf('--pollute-mb');
  const polluteMb = polluteAt >= 0 ? Number(args[polluteAt + 1]) : 0;
  const outcome = loadExampleProfile('epp-kv-cache-aware');
  if (!outcome.ok) throw new Error(outcome.error);
  const endpoints = aggregatedEndpoints(endpointCount!);
  const rng = new Rng(7);
  const bodies = new SharedPrefixBodies(rng, tokens!);
  const requests = Array.from({ length: requestCount! }, (_, i) => read(bodies.body(i), `r${i}`));
  const answers = Array.from({ length: 64 }, () => {
    const rates = new Map<string, number>();
    for (const e of endpoints) rates.set(e.id, Math.floor(rng.next() * 33) / 33);
    return answerJson(rates);
  });
  const store = new MemoryStateStore();
  await store.replaceEndpoints(endpoints);
  const indexer = new TextAnswers();
  const director = new Director({
    store,
    profile: outcome.loaded.profile,
    indexer,
    random: rng.next,
    indexerCacheTtlMs: answerCache ? 500 : 0,
  });
  const scratch = new Float64Array(Math.max(1, (polluteMb * 1024 * 1024) / 8));
  const warmup = 1000;
  const timed = 2000;
  const wall = new Float64Array(timed);
  const cpu = new Float64Array(timed);
  const open: PickTicket[] = [];
  let sink = 0;
  for (let i = 0; i < warmup + timed; i++) {
    const req = fresh ? read(bodies.body(i), `f${i}`) : requests[i % requests.length]!;
    if (!fresh) req.requestId = `q${i}`;
    indexer.text = answers[i % answers.length]!;
    const now = Date.now();
    for (const e of endpoints) {
      await store.writeSignals(e.id, {
        waitingQueueSize: rng.int(0, 20),
        runningRequests: rng.int(0, 64),
        kvCacheUsage: rng.next(),
        updatedAtMs: now,
      });
    }
    if (polluteMb > 0) {
      for (let k = 0; k < 20_000; k++) {
        const j = Math.floor(rng.next() * scratch.length);
        sink += scratch[j]!;
        scratch[j] = sink;
      }
    }
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const d = await director.pick(req);
    const us = (performance.now() - t0) * 1000;
    const c = process.cpuUsage(c0);
    open.push(d.ticket);
    if (open.length > 32) await open.shift()!.release();
    if (i >= warmup) {
      wall[i - warmup] = us;
      cpu[i - warmup] = c.user + c.system;
    }
  }
  wall.sort();
  cpu.sort();
  const mode = [fresh ? 'fresh requests' : `${requestCount} requests in turn`];
  if (answerCache) mode.push('answer cache on');
  if (polluteMb > 0) mode.push(`${polluteMb} MB polluted between decisions`);
  process.stdout.write(
    `warm KV-aware decision, ${endpointCount} endpoints, ${tokens} tokens, ${mode.join(', ')}: ` +
      `p50 ${percentileSorted(wall, 50).toFixed(1)} us, CPU p50 ${percentileSorted(cpu, 50).toFixed(1)} us` +
      `${sink === 1 ? ' ' : ''}\n`,
  );
}
