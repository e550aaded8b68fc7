// Client of the cache-indexer's POST /match_sort (contract: docs/cache-indexer-api.md).
//
// Request:  {"model": "m", "prompt": "..."} | {"model","messages":[{role,content}]} | {"model","token_ids":[...]}
//           plus "candidates": ["ip:port", ...]
// Response: {"results": [{"endpoint": "ip:port", "hitRate": 0.75, "matchedBlocks": 3, "totalBlocks": 4}, ...]}
//           sorted by hitRate descending, every candidate present (0 when unknown).
//
// A slow or dead indexer must not add its timeout to every request: after
// `failureThreshold` consecutive failures the breaker opens and requests are
// scored without hit rates until a back-off passes; then one request probes.
import type { Readable } from 'node:stream';
import { Agent, request as httpRequest } from 'undici';
import type { HitRates, LLMRequest } from '../scheduling/types.js';

export interface MatchSortResult {
  endpoint: string;
  hitRate: number;
  matchedBlocks?: number;
  totalBlocks?: number;
}

export interface IndexerOutcome {
  hitRates: HitRates | undefined;
  /** ok | timeout | error | open (breaker open, not asked) */
  status: 'ok' | 'timeout' | 'error' | 'open';
  latencyMs: number;
  error?: string;
  /**
   * The answer's text as the indexer sent it, when it was parsed into hitRates: the director
   * caches it as it is (parsing it again on a hit) instead of serialising the map once more.
   */
  answer?: string;
}

export interface CacheIndexerClientOptions {
  failureThreshold?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
}

/** A /match_sort body of pieces sent one after another (`length` UTF-8 bytes in all). */
export interface SplicedBody {
  chunks: Array<string | Uint8Array>;
  length: number;
}

/**
 * The /match_sort request body. A chat whose body reader kept the messages'
 * bytes (`messagesJson`) is those bytes between a small head and tail, sent
 * as three pieces: the prompt is serialised by nobody and not even copied
 * (JSON.stringify of a 128 KB prompt and its UTF-8 encoding cost ~10x a
 * copy; the copy itself, into a fresh 128 KB buffer, was ~40 us of page
 * faults and memcpy a decision). The pieces view the request body, which
 * stays ours until the answer (or the timeout, which drops the socket)
 * comes back. Head and tail stay strings: the socket encodes them as it
 * writes, and a decision allocates no Buffer (in a process churning
 * request bodies, a small Buffer.from took ~25 us of external-memory GC).
 * Otherwise one JSON.stringify.
 */
export function matchSortBody(req: LLMRequest, candidates: readonly string[]): string | SplicedBody {
  const raw = !req.tokenIds && req.apiType === 'chat' ? req.messagesJson?.() : undefined;
  if (raw) {
    const head = splicedHead(req.model);
    const tail = splicedTail(candidates);
    return {
      chunks: [head, raw, tail],
      length: Buffer.byteLength(head) + raw.length + Buffer.byteLength(tail),
    };
  }
  const body: Record<string, unknown> = { model: req.model };
  if (req.tokenIds) body.token_ids = req.tokenIds;
  else if (req.messages) body.messages = req.messages;
  else body.prompt = req.promptText;
  body.candidates = candidates;
  return JSON.stringify(body);
}

// The spliced body's head and tail of the last call: the model and the candidates repeat from one
// decision to the next (strings: sharing them is invisible), and serialising 32 endpoint ids was
// ~3 us a decision.
let lastModel: string | undefined;
let lastHead = '';
let lastCandidates: string[] = [];
let lastTail = '';

function splicedHead(model: string): string {
  if (model !== lastModel) {
    lastHead = `{"model":${JSON.stringify(model)},"messages":`;
    lastModel = model;
  }
  return lastHead;
}

function splicedTail(candidates: readonly string[]): string {
  const n = candidates.length;
  let same = n === lastCandidates.length && n > 0;
  for (let i = 0; same && i < n; i++) same = candidates[i] === lastCandidates[i];
  if (!same) {
    lastTail = `,"candidates":${JSON.stringify(candidates)}}`;
    lastCandidates = candidates.slice();
  }
  return lastTail;
}

/** Parses a /match_sort answer into hit rates in [0,1]; throws on a malformed one. */
export function parseMatchSort(text: string): Map<string, number> {
  const doc = JSON.parse(text) as { results?: unknown };
  if (!doc || !Array.isArray(doc.results)) throw new Error('match_sort answer has no results array');
  const out = new Map<string, number>();
  for (const r of doc.results as Array<Partial<MatchSortResult>>) {
    if (typeof r?.endpoint !== 'string' || typeof r.hitRate !== 'number' || !Number.isFinite(r.hitRate)) {
      throw new Error('match_sort result needs a string endpoint and a numeric hitRate');
    }
    out.set(r.endpoint, Math.min(1, Math.max(0, r.hitRate)));
  }
  return out;
}

export class CacheIndexerClient {
  private readonly agent = new Agent({ keepAliveTimeout: 30_000, connections: 64 });
  private failures = 0;
  private openUntilMs = 0;
  private backoffMs: number;
  private probing = false;
  private readonly failureThreshold: number;
  private readonly minBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly now: () => number;

  constructor(opts: CacheIndexerClientOptions = {}) {
    this.failureThreshold = opts.failureThreshold ?? 3;
    this.minBackoffMs = opts.minBackoffMs ?? 1_000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 30_000;
    this.backoffMs = this.minBackoffMs;
    this.now = opts.now ?? Date.now;
  }

  get breakerOpen(): boolean {
    return this.failures >= this.failureThreshold && this.now() < this.openUntilMs;
  }

  async matchSort(
    url: string,
    req: LLMRequest,
    candidates: readonly string[],
    timeoutMs: number,
  ): Promise<IndexerOutcome> {
    const start = this.now();
    if (this.failures >= this.failureThreshold) {
      // Half-open: after the back-off, exactly one request probes.
      if (start < this.openUntilMs || this.probing)
        return { hitRates: undefined, status: 'open', latencyMs: 0 };
      this.probing = true;
    }
    try {
      const body = matchSortBody(req, candidates);
      const spliced = typeof body !== 'string';
      const res = await httpRequest(url, {
        method: 'POST',
        // The pieces as an iterable: undici writes them in turn, under the length given (no chunked
        // encoding). Its docs list Iterable bodies (docs/api/Dispatcher.md, DispatchOptions.body);
        // its types do not.
        body: spliced ? (body.chunks as unknown as Readable) : body,
        headers: spliced
          ? { 'content-type': 'application/json', 'content-length': String(body.length) }
          : { 'content-type': 'application/json' },
        dispatcher: this.agent,
        signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`match_sort answered HTTP ${res.statusCode}`);
      const hitRates = parseMatchSort(text);
      this.failures = 0;
      this.backoffMs = this.minBackoffMs;
      return { hitRates, status: 'ok', latencyMs: this.now() - start, answer: text };
    } catch (e) {
      const err = e as Error;
      const timeout = err.name === 'TimeoutError' || err.name === 'AbortError';
      this.failures++;
      if (this.failures >= this.failureThreshold) {
        this.openUntilMs = this.now() + this.backoffMs;
        this.backoffMs = Math.min(this.maxBackoffMs, this.backoffMs * 2);
      }
      return {
        hitRates: undefined,
        status: timeout ? 'timeout' : 'error',
        latencyMs: this.now() - start,
        error: err.message,
      };
    } finally {
      this.probing = false;
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
