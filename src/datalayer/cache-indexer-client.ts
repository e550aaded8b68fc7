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
}

export interface CacheIndexerClientOptions {
  failureThreshold?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  now?: () => number;
}

/**
 * The /match_sort request body. A chat whose body reader kept the messages'
 * bytes (`messagesJson`) is one copy of them between a small head and tail:
 * the prompt is serialised by nobody (JSON.stringify of a 128 KB prompt and
 * its UTF-8 encoding cost ~10x that copy). Otherwise one JSON.stringify.
 */
export function matchSortBody(req: LLMRequest, candidates: readonly string[]): string | Buffer {
  const raw = !req.tokenIds && req.apiType === 'chat' ? req.messagesJson?.() : undefined;
  if (raw) {
    const head = Buffer.from(`{"model":${JSON.stringify(req.model)},"messages":`);
    const tail = Buffer.from(`,"candidates":${JSON.stringify(candidates)}}`);
    const out = Buffer.allocUnsafe(head.length + raw.length + tail.length);
    head.copy(out, 0);
    out.set(raw, head.length);
    tail.copy(out, head.length + raw.length);
    return out;
  }
  const body: Record<string, unknown> = { model: req.model };
  if (req.tokenIds) body.token_ids = req.tokenIds;
  else if (req.messages) body.messages = req.messages;
  else body.prompt = req.promptText;
  body.candidates = candidates;
  return JSON.stringify(body);
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
      const res = await httpRequest(url, {
        method: 'POST',
        body: matchSortBody(req, candidates),
        headers: { 'content-type': 'application/json' },
        dispatcher: this.agent,
        signal: AbortSignal.timeout(Math.max(1, timeoutMs)),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`match_sort answered HTTP ${res.statusCode}`);
      const hitRates = parseMatchSort(text);
      this.failures = 0;
      this.backoffMs = this.minBackoffMs;
      return { hitRates, status: 'ok', latencyMs: this.now() - start };
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
