// The cache-indexer's HTTP API (hono): POST /match_sort, GET /healthz,
// GET /pods (per-pod index status), GET /metrics.
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { DEFAULT_JSON_BOUNDS } from '../request/json-scan.js';
import { openAIErrorBody, RequestError } from '../request/openai.js';
import { readBodyStream } from '../request/read-body.js';
import type { CacheIndexer } from './indexer.js';
import type { IndexerMetrics } from './metrics.js';
import { parseMatchRequest } from './match-request.js';
import type { PromptTokenizer } from './prompt-tokenizer.js';

export interface IndexerAppDeps {
  indexer: CacheIndexer;
  metrics: IndexerMetrics;
  /** How text prompts become tokens (default: the simple tokenizer, as mock-vllm). */
  tokenizer?: PromptTokenizer;
  /** Extra health detail (store kind, subscriptions). */
  health?: () => Record<string, unknown>;
  /** Larger /match_sort bodies are answered 413 unread (default MAX_MATCH_BODY_BYTES). */
  maxBodyBytes?: number;
}

/** Lookups carry one prompt; this bounds what one request can make the indexer buffer. */
export const MAX_MATCH_BODY_BYTES = 32 * 1024 * 1024;

function errorResponse(status: number, message: string, param?: string): Response {
  return new Response(openAIErrorBody(status, message, param), {
    status,
    headers: { 'content-type': 'application/json' },
  });
}

export function buildIndexerApp(deps: IndexerAppDeps): Hono {
  const { indexer, metrics } = deps;
  const app = new Hono();

  const maxBody = deps.maxBodyBytes ?? MAX_MATCH_BODY_BYTES;
  const limit = bodyLimit({
    maxSize: maxBody,
    onError: () => {
      metrics.lookups.inc({ status: 'bad_request' });
      return errorResponse(413, `request body exceeds ${maxBody} bytes`);
    },
  });

  app.post('/match_sort', limit, async (c) => {
    const end = metrics.lookupSeconds.startTimer();
    let req;
    try {
      // Scanned while read: a nested body is refused at the chunk that goes too deep.
      const body = await readBodyStream(c.req.raw.body, maxBody, DEFAULT_JSON_BOUNDS);
      req = parseMatchRequest(body, deps.tokenizer, true);
    } catch (e) {
      metrics.lookups.inc({ status: 'bad_request' });
      if (e instanceof RequestError) return errorResponse(e.status, e.message, e.param);
      throw e;
    }
    try {
      const results = await indexer.match(req.model, req.tokens, req.candidates);
      metrics.lookups.inc({ status: 'ok' });
      return c.json({ results });
    } catch (e) {
      metrics.lookups.inc({ status: 'error' });
      return errorResponse(503, `index unavailable: ${(e as Error).message}`);
    } finally {
      end();
    }
  });

  app.get('/healthz', (c) =>
    c.json({ status: 'ok', ...indexer.totals(), store: indexer.store.kind, ...deps.health?.() }),
  );
  app.get('/pods', (c) => c.json({ pods: indexer.status() }));
  app.get('/metrics', async (c) =>
    c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }),
  );
  app.notFound((c) => errorResponse(404, `no route for ${c.req.method} ${c.req.path}`));
  app.onError((err) => errorResponse(500, err.message));
  return app;
}
