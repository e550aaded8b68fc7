// mock-vllm: an OpenAI-compatible model server simulator. One request's
// life: parse -> tokenize (chat rendered as the EPP does) -> hash full
// blocks -> wait in the FIFO queue for a seat and KV blocks -> prefill
// (uncached tokens / prefill rate) -> one decode step per output token ->
// answer (JSON or SSE) -> release. Times are divided by --time-scale.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomBytes, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { openAIErrorBody, parseOpenAIRequest, RequestError } from '../request/openai.js';
import { DEFAULT_JSON_BOUNDS } from '../request/json-scan.js';
import { BodyTooLargeError, readBody as readBoundedBody } from '../request/read-body.js';
import { tokenizeSimple } from '../request/tokens.js';
import { chainBlockHashes } from '../kvcache/block-hash.js';
import { podTopic, type KvEvent } from '../kvcache/events.js';
import type { MockVllmConfig } from './config.js';
import { KvBlockManager } from './kv-cache.js';
import { CapacityError, Engine, type Admission } from './engine.js';
import { MockMetrics } from './metrics.js';
import { parseKvTransferParams, prefillAnswerParams } from './pd.js';
import {
  chunk,
  DONE,
  fullResponse,
  tokenText,
  answerText,
  usageChunk,
  usageOf,
  type ResponseMeta,
} from './responses.js';
import { KvEventPublisher } from './kv-publisher.js';

const MAX_BODY_BYTES = 32 * 1024 * 1024;

export interface MockVllm {
  readonly config: MockVllmConfig;
  readonly engine: Engine;
  readonly metrics: MockMetrics;
  readonly publisher: KvEventPublisher | undefined;
  readonly server: Server;
  /** The port actually bound (useful with --port 0). */
  readonly port: number;
  close(): Promise<void>;
}

function sendJson(
  res: ServerResponse,
  status: number,
  body: string,
  extra: Record<string, string> = {},
): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...extra,
  });
  res.end(body);
}

/** The body as bytes (shape-scanned while read); a RequestError 413 or 400 when refused. */
async function readBody(req: IncomingMessage): Promise<Buffer> {
  try {
    return await readBoundedBody(req, MAX_BODY_BYTES, DEFAULT_JSON_BOUNDS);
  } catch (e) {
    if (e instanceof BodyTooLargeError) throw new RequestError(413, e.message);
    throw e;
  }
}

function maxTokensOf(body: Record<string, unknown>, dflt: number): number {
  const v = body.max_completion_tokens ?? body.max_tokens;
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) {
    throw new RequestError(
      400,
      'max_tokens must be a positive integer',
      body.max_completion_tokens !== undefined ? 'max_completion_tokens' : 'max_tokens',
    );
  }
  return v;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits until `target` (performance.now() ms); sub-millisecond waits are skipped, keeping the schedule absolute. */
async function waitUntil(target: number): Promise<void> {
  const d = target - performance.now();
  if (d >= 1) await sleep(d);
}

export async function startMockVllm(cfg: MockVllmConfig, log: Logger): Promise<MockVllm> {
  let publisher: KvEventPublisher | undefined;
  const emit = (ev: KvEvent) => publisher?.emit(ev);
  const kv = new KvBlockManager(cfg.kvCacheBlocks, cfg.blockSize, emit);
  const engine = new Engine(kv, cfg.maxNumSeqs);
  const metrics = new MockMetrics(cfg, engine);
  const engineId = randomUUID();
  const scale = cfg.timeScale;
  const L = metrics.l;
  let boundPort = cfg.port;

  async function complete(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const t0 = performance.now();
    const raw = await readBody(req);
    const requestId = (req.headers['x-request-id'] as string | undefined) ?? randomBytes(8).toString('hex');
    const { request, body } = parseOpenAIRequest(path, raw, {}, requestId, true);
    const adapter = cfg.loraModules.includes(request.model) ? request.model : undefined;
    if (request.model !== cfg.model && !adapter) {
      sendJson(res, 404, openAIErrorBody(404, `The model \`${request.model}\` does not exist.`, 'model'));
      return;
    }
    const maxTokens = maxTokensOf(body, cfg.defaultMaxTokens);
    const pd = parseKvTransferParams(body.kv_transfer_params, cfg.role);
    const streamOpts = body.stream_options as { include_usage?: unknown } | undefined | null;
    const includeUsage = request.stream && streamOpts?.include_usage === true;
    const tokens = request.tokenIds ? Uint32Array.from(request.tokenIds) : tokenizeSimple(request.promptText);
    const promptTokens = tokens.length;
    const hashes = chainBlockHashes(tokens, cfg.blockSize);

    const ac = new AbortController();
    let finished = false;
    let admission: Admission | undefined;
    res.on('close', () => {
      if (!finished) ac.abort(new Error('client closed the connection'));
      if (admission) engine.finish(admission);
    });
    try {
      admission = await engine.submit({ hashes, tokens, promptTokens, maxTokens, adapter }, ac.signal);
    } catch (e) {
      if (e instanceof CapacityError) throw new RequestError(400, e.message);
      return; // aborted while waiting: the client is gone
    }
    if (ac.signal.aborted) {
      // The client left between admission and here ('close' saw no admission yet).
      engine.finish(admission);
      return;
    }
    const cachedTokens = admission.cachedTokens;
    metrics.prefixQueries.inc(L, promptTokens);
    metrics.prefixHits.inc(L, cachedTokens);
    metrics.pdRequests.inc({ model_name: cfg.model, kind: pd.kind });
    // A decode request's prompt KV comes by transfer from the prefill pod: nothing to compute.
    const computeTokens = pd.kind === 'decode' ? 0 : promptTokens - cachedTokens;
    const prefillMs = ((computeTokens / cfg.prefillTokensPerS) * 1000) / scale;
    const decodeMs = cfg.decodeMsPerToken / scale;
    const tStart = performance.now();
    const meta: ResponseMeta = {
      id: `${request.apiType === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomBytes(12).toString('hex')}`,
      created: Math.floor(Date.now() / 1000),
      model: request.model,
      apiType: request.apiType,
    };
    const kvParams =
      pd.kind === 'prefill'
        ? prefillAnswerParams(
            engineId,
            KvBlockManager.blockIds(admission.allocation),
            cfg.advertiseHost ?? cfg.host,
            boundPort,
          )
        : undefined;
    const headers = {
      'x-request-id': requestId,
      'x-mock-vllm-kind': pd.kind,
      'x-mock-vllm-cached-tokens': String(cachedTokens),
    };
    const usage = usageOf(promptTokens, maxTokens, cachedTokens);
    let ttft = 0;
    if (!request.stream) {
      await waitUntil(tStart + prefillMs + (maxTokens - 1) * decodeMs);
      ttft = prefillMs;
      if (ac.signal.aborted) return;
      finished = true;
      sendJson(
        res,
        200,
        JSON.stringify(fullResponse(meta, answerText(maxTokens), 'length', usage, kvParams)),
        headers,
      );
    } else {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        ...headers,
      });
      for (let i = 0; i < maxTokens; i++) {
        await waitUntil(tStart + prefillMs + i * decodeMs);
        if (ac.signal.aborted) return;
        if (i === 0) ttft = performance.now() - tStart;
        res.write(chunk(meta, tokenText(i), { first: i === 0 }));
      }
      finished = true;
      res.write(chunk(meta, undefined, { finishReason: 'length', kvTransferParams: kvParams }));
      if (includeUsage) res.write(usageChunk(meta, usage));
      res.end(DONE);
    }
    const queued = admission.queuedMs;
    metrics.promptTokens.inc(L, computeTokens);
    metrics.generationTokens.inc(L, maxTokens);
    metrics.requestSuccess.inc({ ...L, finished_reason: 'length' });
    metrics.ttft.observe(L, ((queued + ttft) * scale) / 1000);
    if (maxTokens > 1) metrics.itl.observe(L, cfg.decodeMsPerToken / 1000);
    metrics.e2e.observe(L, ((performance.now() - t0) * scale) / 1000);
    metrics.promptHist.observe(L, promptTokens);
    metrics.genHist.observe(L, maxTokens);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?', 1)[0]!;
    const method = req.method ?? 'GET';
    try {
      if (method === 'POST' && (path === '/v1/chat/completions' || path === '/v1/completions')) {
        await complete(req, res, path);
      } else if (method === 'GET' && path === '/health') {
        res.writeHead(200).end();
      } else if (method === 'GET' && path === '/metrics') {
        const text = await metrics.registry.metrics();
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
      } else if (method === 'GET' && path === '/v1/models') {
        const created = Math.floor(Date.now() / 1000);
        const model = {
          id: cfg.model,
          object: 'model',
          created,
          owned_by: 'vllm',
          root: cfg.model,
          parent: null,
          max_model_len: cfg.kvCacheBlocks * cfg.blockSize,
        };
        sendJson(res, 200, JSON.stringify({ object: 'list', data: [model] }));
      } else if (method === 'POST' && path === '/reset_prefix_cache') {
        if (kv.reset()) res.writeHead(200).end();
        else
          sendJson(
            res,
            409,
            openAIErrorBody(409, 'requests are running; the prefix cache can be reset only when idle'),
          );
      } else {
        sendJson(res, 404, openAIErrorBody(404, `no route for ${method} ${path}`));
      }
    } catch (e) {
      const err = e as Error;
      const status = e instanceof RequestError ? e.status : 500;
      if (status >= 500) log.error({ err, path }, 'request failed');
      if (!res.headersSent)
        sendJson(res, status, openAIErrorBody(status, err.message, (e as RequestError).param));
      else res.destroy(err);
    }
  }

  const server = createServer({ keepAliveTimeout: 30_000 }, (req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  boundPort = (server.address() as AddressInfo).port;

  if (cfg.kvEventsPort || cfg.kvEventsConnect.length > 0) {
    const topic = cfg.kvEventsTopic ?? podTopic(`${cfg.advertiseHost ?? cfg.host}:${boundPort}`, cfg.model);
    publisher = new KvEventPublisher({
      bindPort: cfg.kvEventsPort,
      bindHost: cfg.host,
      connect: cfg.kvEventsConnect,
      replayPort: cfg.kvEventsReplayPort || undefined,
      topic,
      encoding: cfg.kvEventsEncoding,
      bufferSize: cfg.kvEventsBufferSize,
      dataParallelRank: 0,
      onError: (err) => log.warn({ err }, 'KV event publisher error'),
    });
    try {
      await publisher.start();
    } catch (e) {
      server.close();
      throw e;
    }
  }

  return {
    config: cfg,
    engine,
    metrics,
    publisher,
    server,
    port: boundPort,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      await publisher?.close();
    },
  };
}
