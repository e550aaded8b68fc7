// A CacheIndexerClient that answers /match_sort in process instead of over
// HTTP, so the Director runs unchanged (same call, same answer caching,
// same hit-rate map) while the network round trip is left out; the
// benchmarks that use it say so, and the round trip is measured on its own.
// The client-side CPU of a real call is kept: the /match_sort request body
// is serialised and the JSON answer parsed, exactly as the HTTP client does.
//   mode 'compute': the answer is computed at call time from a keyed block
//                   index (numeric block keys of the whole prompt, typed
//                   arrays: src/state/prefix-index.ts), the indexer's own
//                   work done on the EPP's core here;
//   mode 'answer':  the answer is whatever `answerWith` returns (the
//                   simulator, or a precomputed answer).
import {
  CacheIndexerClient,
  matchSortBody,
  parseMatchSort,
  type IndexerOutcome,
} from '../../../src/datalayer/cache-indexer-client.js';
import {
  textBlockHashes,
  textBlockKeys,
  tokenBlockHashes,
  tokenBlockKeys,
  utf8BlockKeys,
} from '../../../src/request/prefix-hash.js';
import type { LLMRequest } from '../../../src/scheduling/types.js';
import type { PrefixIndex } from '../../../src/state/prefix-index.js';
import type { BlockIndex } from './block-index.js';

export interface InProcessIndexerOptions {
  /** KV block size of the model servers, in tokens. */
  blockSizeTokens: number;
  /** Serialise the request and parse a JSON answer as the HTTP client does (default true). */
  wire?: boolean;
  /** Pretend the indexer is down (tests the degraded path). */
  failing?: () => boolean;
}

/** The model-server block hashes of a request's prompt (what the indexer looks up). */
export function requestBlockHashes(req: LLMRequest, blockSizeTokens: number): string[] {
  return req.tokenIds
    ? tokenBlockHashes(req.tokenIds, req.model, blockSizeTokens, Number.MAX_SAFE_INTEGER)
    : textBlockHashes(req.promptText, req.model, blockSizeTokens, Number.MAX_SAFE_INTEGER);
}

/**
 * The block keys of a whole prompt (what the in-process index of the scheduler benchmark holds).
 * A request from the body reader is hashed from its UTF-8 (the same keys): decoding it into a
 * string here would be work no process does in production (the indexer reads the JSON it is sent).
 */
export function requestBlockKeys(req: LLMRequest, blockSizeTokens: number): Float64Array {
  if (req.tokenIds) return tokenBlockKeys(req.tokenIds, req.model, blockSizeTokens, Number.MAX_SAFE_INTEGER);
  if (req.promptUtf8)
    return utf8BlockKeys(req.promptUtf8, req.model, blockSizeTokens, Number.MAX_SAFE_INTEGER);
  return textBlockKeys(req.promptText, req.model, blockSizeTokens, Number.MAX_SAFE_INTEGER);
}

/** hitRatesFromIndex over a keyed index (numbers, typed arrays): the same leading-run answer. */
export function hitRatesFromKeys(
  index: PrefixIndex,
  keys: ArrayLike<number>,
  candidates: readonly string[],
): Map<string, number> {
  const matched = index.match(keys);
  const total = keys.length;
  const out = new Map<string, number>();
  for (const c of candidates) out.set(c, total === 0 ? 0 : (matched.get(c) ?? 0) / total);
  return out;
}

/** Hit rate per candidate from leading matched blocks. */
export function hitRatesFromIndex(
  index: BlockIndex,
  hashes: readonly string[],
  candidates: readonly string[],
): Map<string, number> {
  const matched = index.matchLeading(hashes, candidates);
  const total = hashes.length;
  const out = new Map<string, number>();
  for (const c of candidates) out.set(c, total === 0 ? 0 : matched.get(c)! / total);
  return out;
}

/** A /match_sort answer's JSON text for hit rates: sorted by hit rate, highest first (ties keep their order). */
export function answerJson(rates: ReadonlyMap<string, number>): string {
  const results = [...rates]
    .map(([endpoint, hitRate]) => ({ endpoint, hitRate }))
    .sort((a, b) => b.hitRate - a.hitRate);
  return JSON.stringify({ results });
}

export class InProcessIndexer extends CacheIndexerClient {
  calls = 0;
  /** Block keys of the last request asked about, so callers can record it without hashing again. */
  lastKeys: { requestId: string; keys: Float64Array } | undefined;
  /**
   * Wall time (us) of the last call's indexer-side work: computing the answer
   * and writing its JSON. The production cache-indexer does that in its own
   * process; the scheduler benchmark reports the decision with and without it.
   */
  lastIndexerUs = 0;
  /** Answer source in 'answer' mode. */
  answerWith:
    ((req: LLMRequest, candidates: readonly string[]) => Map<string, number> | undefined) | undefined;
  /**
   * The answer's JSON text, written before the call (the scheduler bench's `--indexer cached`):
   * what reaches the EPP over the wire, so neither computing it nor writing it is in the call.
   * Wins over answerWith; ignored without the wire.
   */
  answerTextWith: ((req: LLMRequest, candidates: readonly string[]) => string | undefined) | undefined;

  constructor(
    private readonly index: PrefixIndex | undefined,
    private readonly opts: InProcessIndexerOptions,
  ) {
    super();
  }

  override async matchSort(
    _url: string,
    req: LLMRequest,
    candidates: readonly string[],
    _timeoutMs: number,
  ): Promise<IndexerOutcome> {
    this.calls++;
    if (this.opts.failing?.())
      return { hitRates: undefined, status: 'error', latencyMs: 0, error: 'simulated' };
    const wire = this.opts.wire ?? true;
    // What the HTTP client would send (serialising the whole prompt).
    if (wire) matchSortBody(req, candidates);
    if (wire && this.answerTextWith) {
      this.lastIndexerUs = 0;
      const text = this.answerTextWith(req, candidates);
      if (text === undefined)
        return { hitRates: undefined, status: 'error', latencyMs: 0, error: 'no answer' };
      return { hitRates: parseMatchSort(text), status: 'ok', latencyMs: 0, answer: text };
    }
    let rates: Map<string, number> | undefined;
    const t0 = performance.now();
    if (this.answerWith) {
      rates = this.answerWith(req, candidates);
    } else if (this.index) {
      const keys = requestBlockKeys(req, this.opts.blockSizeTokens);
      this.lastKeys = { requestId: req.requestId, keys };
      rates = hitRatesFromKeys(this.index, keys, candidates);
    }
    if (!rates) {
      this.lastIndexerUs = (performance.now() - t0) * 1000;
      return { hitRates: undefined, status: 'error', latencyMs: 0, error: 'no answer' };
    }
    if (!wire) {
      this.lastIndexerUs = (performance.now() - t0) * 1000;
      return { hitRates: rates, status: 'ok', latencyMs: 0 };
    }
    // What the indexer would send back (its work) ...
    const answer = answerJson(rates);
    this.lastIndexerUs = (performance.now() - t0) * 1000;
    // ... and what the HTTP client would receive and parse (the EPP's).
    return { hitRates: parseMatchSort(answer), status: 'ok', latencyMs: 0, answer };
  }
}
