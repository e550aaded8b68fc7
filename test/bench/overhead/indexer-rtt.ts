// Section 5: the cache-indexer round trip as the EPP pays it: POST
// /match_sort through the product's CacheIndexerClient (serialise the
// prompt, HTTP on a keep-alive connection, the indexer tokenising and
// hashing the prompt and walking its index, parse the answer) against a
// spawned `hermes-router cache-indexer`, one request at a time.
// The index is fed over its --kv-events-bind socket with BlockStored events
// for 8 shared system prompts (the first half of each prompt), held by 4 of
// the candidates, so a lookup walks real matches before it stops; the other
// half of each prompt is new to every pod.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Publisher } from 'zeromq';
import { CacheIndexerClient } from '../../../src/datalayer/cache-indexer-client.js';
import { encodeBatch, encodeSeq, podTopic, type BlockStored } from '../../../src/kvcache/events.js';
import { parseOpenAIRequest } from '../../../src/request/openai.js';
import { tokenizeSimple } from '../../../src/request/tokens.js';
import { freePort } from '../../helpers/ports.js';
import { cpuMs } from '../extproc.js';
import { aggregatedEndpoints } from '../sim/cluster-layout.js';
import { Rng, randomText } from '../sim/rng.js';
import { formatTable, noiseSummary, pct, round, runs, say, spread } from './report.js';

const MODEL = 'bench-model';
const BLOCK = 16;
const SYSTEMS = 8;
/** Candidates holding the system prompts (every other one of the first eight). */
const HOLDERS = 4;

export interface IndexerRttOptions {
  root: string;
  tokens: number[];
  candidates: number[];
  warmup: number;
  timed: number;
  repeats: number;
}

export interface IndexerRttRow {
  promptTokens: number;
  candidates: number;
  p50Ms: number[];
  p99Ms: number[];
  /** cache-indexer process CPU per /match_sort, from /proc. */
  indexerCpuMsPerCall: Array<number | null>;
  /** Mean hit rate the holders of the system prompt got (sanity: ~0.5). */
  holderHitRate: number;
  errors: number;
}

export interface IndexerRttSection {
  indexedBlocks: number;
  rows: IndexerRttRow[];
  noise: { p50: ReturnType<typeof noiseSummary>; p99: ReturnType<typeof noiseSummary> };
}

interface Indexer {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

async function startIndexer(root: string, eventsPort: number): Promise<Indexer> {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [
      join(root, 'bin/hermes-router.js'),
      'cache-indexer',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--kv-events-bind',
      `tcp://127.0.0.1:${eventsPort}`,
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`cache-indexer exited with ${proc.exitCode}`);
    try {
      if ((await fetch(`${url}/healthz`)).ok) return { url, proc, stop };
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error('cache-indexer not ready in 15 s');
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function indexedBlocks(url: string): Promise<number> {
  const h = (await (await fetch(`${url}/healthz`)).json()) as { blocks?: number };
  return h.blocks ?? 0;
}

/** Publishes each system prompt's blocks for every holder; waits until the index has them all. */
async function feed(url: string, eventsPort: number, holders: string[], systems: string[]): Promise<number> {
  const pub = new Publisher({ linger: 0, sendHighWaterMark: 0 });
  pub.connect(`tcp://127.0.0.1:${eventsPort}`);
  try {
    // PUB/SUB drops what is sent before the subscription reaches the publisher.
    await new Promise((r) => setTimeout(r, 300));
    let expected = 0;
    for (const pod of holders) {
      let seq = 0n;
      for (const text of systems) {
        const tokens = Array.from(tokenizeSimple(text));
        const blocks = Math.floor(tokens.length / BLOCK);
        const ev: BlockStored = {
          type: 'BlockStored',
          blockHashes: Array.from({ length: blocks }, (_, i) => BigInt(i + 1) * 1_000_003n + seq * 7n),
          parentBlockHash: null,
          tokenIds: tokens.slice(0, blocks * BLOCK),
          blockSize: BLOCK,
          loraId: null,
          medium: null,
          loraName: null,
        };
        expected += blocks;
        await pub.send([
          podTopic(pod, MODEL),
          encodeSeq(seq++),
          encodeBatch({ ts: Date.now() / 1000, events: [ev], dataParallelRank: null }),
        ]);
      }
    }
    const deadline = Date.now() + 20_000;
    while ((await indexedBlocks(url)) < expected) {
      if (Date.now() > deadline)
        throw new Error(`index holds ${await indexedBlocks(url)} of ${expected} blocks after 20 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return expected;
  } finally {
    pub.close();
  }
}

export async function indexerRttSection(o: IndexerRttOptions): Promise<IndexerRttSection> {
  say(
    `\n## 5. cache-indexer round trip (POST /match_sort via CacheIndexerClient, one at a time, ${o.repeats} run(s))`,
  );
  const eventsPort = await freePort();
  const indexer = await startIndexer(o.root, eventsPort);
  const client = new CacheIndexerClient({ failureThreshold: 1_000_000 });
  try {
    const rng = new Rng(5);
    const maxCandidates = Math.max(...o.candidates);
    const all = aggregatedEndpoints(maxCandidates).map((e) => e.id);
    const holders = all.filter((_, i) => i % 2 === 0).slice(0, HOLDERS);
    // System prompts of half the longest prompt (aligned to whole blocks); shorter prompts use a leading slice.
    const maxTokens = Math.max(...o.tokens);
    const sysChars = (maxTokens / 2) * 4;
    const systems = Array.from(
      { length: SYSTEMS },
      (_, g) => `sys${String(g).padStart(3, '0')} ` + randomText(rng, sysChars - 7),
    );
    const blocks = await feed(indexer.url, eventsPort, holders, systems);
    say(
      `  index: ${blocks} blocks (${SYSTEMS} system prompts of ${maxTokens / 2} tokens on ${holders.length} pods)`,
    );
    const pool = randomText(rng, Math.max(4 * maxTokens, 256 * 1024));
    const rows: IndexerRttRow[] = [];
    for (const t of o.tokens) {
      for (const c of o.candidates) {
        const cands = all.slice(0, c);
        const row: IndexerRttRow = {
          promptTokens: t,
          candidates: c,
          p50Ms: [],
          p99Ms: [],
          indexerCpuMsPerCall: [],
          holderHitRate: 0,
          errors: 0,
        };
        let hitSum = 0;
        let hitN = 0;
        for (let k = 0; k < o.repeats; k++) {
          const lat: number[] = [];
          let cpu0: number | undefined;
          for (let i = 0; i < o.warmup + o.timed; i++) {
            if (i === o.warmup) cpu0 = cpuMs(indexer.proc.pid);
            const sys = systems[rng.int(0, SYSTEMS - 1)]!.slice(0, t * 2);
            const off = rng.int(0, pool.length - t * 2);
            const prompt = sys + pool.slice(off, off + t * 2);
            const req = parseOpenAIRequest(
              '/v1/completions',
              JSON.stringify({ model: MODEL, prompt }),
              {},
              `rtt-${t}-${c}-${k}-${i}`,
            ).request;
            const t0 = performance.now();
            const out = await client.matchSort(`${indexer.url}/match_sort`, req, cands, 5_000);
            const ms = performance.now() - t0;
            if (out.status !== 'ok' || !out.hitRates) {
              row.errors++;
              continue;
            }
            if (i >= o.warmup) {
              lat.push(ms);
              for (const h of holders.filter((x) => cands.includes(x))) {
                hitSum += out.hitRates.get(h) ?? 0;
                hitN++;
              }
            }
          }
          const cpu1 = cpuMs(indexer.proc.pid);
          lat.sort((a, b) => a - b);
          row.p50Ms.push(round(pct(lat, 50), 3));
          row.p99Ms.push(round(pct(lat, 99), 3));
          row.indexerCpuMsPerCall.push(
            cpu0 !== undefined && cpu1 !== undefined && lat.length > 0
              ? round((cpu1 - cpu0) / lat.length, 3)
              : null,
          );
        }
        row.holderHitRate = hitN > 0 ? round(hitSum / hitN, 3) : 0;
        rows.push(row);
        say(
          `  ${String(t).padStart(6)} tok ${String(c).padStart(3)} candidates: p50 ${runs(row.p50Ms, 3)} ms  p99 ${runs(row.p99Ms, 3)} ms  indexer CPU ${runs(row.indexerCpuMsPerCall, 3)} ms/call  holder hit rate ${row.holderHitRate}${row.errors ? `  ${row.errors} ERRORS` : ''}`,
        );
      }
    }
    return {
      indexedBlocks: blocks,
      rows,
      noise: {
        p50: noiseSummary(rows.map((r) => spread(r.p50Ms))),
        p99: noiseSummary(rows.map((r) => spread(r.p99Ms))),
      },
    };
  } finally {
    await client.close();
    await indexer.stop();
  }
}

export function indexerRttTable(s: IndexerRttSection): string {
  return formatTable({
    header: [
      'tokens',
      'candidates',
      'p50 ms (runs)',
      'p99 ms (runs)',
      'indexer CPU ms/call',
      'holder hit rate',
    ],
    rows: s.rows.map((r) => [
      r.promptTokens,
      r.candidates,
      runs(r.p50Ms, 3),
      runs(r.p99Ms, 3),
      runs(r.indexerCpuMsPerCall, 3),
      r.holderHitRate,
    ]),
  });
}
