// One PD request's life in the group leader: choose the prefill and decode
// pods (headers from the EPP, else round robin), run the prefill (prompt
// only, KV kept for a remote decode), then the decode with the prefill's
// kv_transfer_params, and stream the decode pod's answer back unchanged.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { Agent, request, type Dispatcher } from 'undici';
import {
  BodyTooLargeError,
  classifyUpstreamError,
  errorMessage,
  flatHeaders,
  isHopByHop,
  readBody,
  relayableHeaders,
  sendError,
  sendJson,
} from '../gateway/http-util.js';
import { RequestError } from '../request/errors.js';
import { boundedRequestId } from '../request/request-id.js';
import { DEFAULT_JSON_BOUNDS, parseJsonText } from '../request/json-scan.js';
import { decodeBody, kvTransferParamsOf, prefillBody } from './bodies.js';
import { NoPodError, PodChoiceError, type PdGroup, type PdPod } from './group.js';
import {
  DECODE_HEADER,
  PREFILL_HEADER,
  SERVED_DECODE_HEADER,
  SERVED_PREFILL_HEADER,
} from '../common/wire-headers.js';

const servedPaths = new Set(['/v1/chat/completions', '/v1/completions']);

export interface PdProxyOptions {
  group: PdGroup;
  logger: Logger;
  /** Upper bound on waiting for an upstream's response headers (and between body chunks). */
  timeoutMs: number;
  connectTimeoutMs?: number;
  maxBodyBytes?: number;
  /**
   * Name the pods that served each request in response headers. Off by
   * default: they reveal internal addresses to clients (tests, local demo).
   */
  servedHeaders?: boolean;
  dispatcher?: Dispatcher;
}

export interface PdProxyStats {
  requests: number;
  errors: Record<string, number>;
  prefill: Record<string, number>;
  decode: Record<string, number>;
}

export interface PdProxy {
  handle(req: IncomingMessage, res: ServerResponse): void;
  stats(): PdProxyStats;
  close(): Promise<void>;
}

/** Client headers passed on to the model servers (the PD and routing headers are ours, not theirs). */
function upstreamHeaders(req: IncomingMessage, bodyLength: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(flatHeaders(req.headers))) {
    if (
      isHopByHop(k) ||
      k === 'host' ||
      k === 'content-length' ||
      // Node already answered "100 Continue"; undici refuses to send it upstream.
      k === 'expect' ||
      k === PREFILL_HEADER ||
      k === DECODE_HEADER
    )
      continue;
    out[k] = v;
  }
  out['content-type'] = 'application/json';
  out['content-length'] = String(bodyLength);
  return out;
}

class UpstreamError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function createPdProxy(opts: PdProxyOptions): PdProxy {
  const dispatcher =
    opts.dispatcher ??
    new Agent({
      connectTimeout: opts.connectTimeoutMs ?? 5_000,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
  const maxBody = opts.maxBodyBytes ?? 32 * 1024 * 1024;
  const counters: PdProxyStats = { requests: 0, errors: {}, prefill: {}, decode: {} };
  const bump = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

  async function call(
    phase: 'prefill' | 'decode',
    pod: PdPod,
    path: string,
    headers: Record<string, string>,
    body: string,
    signal: AbortSignal,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await request(`http://${pod.id}${path}`, { method: 'POST', headers, body, dispatcher, signal });
    } catch (e) {
      if (signal.aborted) throw e;
      const kind = classifyUpstreamError(e);
      const status = kind === 'timeout' ? 504 : 502;
      throw new UpstreamError(
        status,
        `${phase} pod ${pod.id} ${kind === 'timeout' ? 'timed out' : 'unreachable'}: ${errorMessage(e)}`,
      );
    }
  }

  async function serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const started = Date.now();
    const abort = new AbortController();
    // The client going away ends both upstream calls.
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });

    let raw: Buffer;
    try {
      // Scanned while read: a body nested too deep is refused before it is parsed.
      raw = await readBody(req, maxBody, DEFAULT_JSON_BOUNDS);
    } catch (e) {
      if (e instanceof BodyTooLargeError) return sendError(res, 413, e.message);
      if (e instanceof RequestError) return sendError(res, e.status, e.message);
      throw e;
    }
    let body: unknown;
    try {
      body = parseJsonText(raw);
    } catch (e) {
      return sendError(res, 400, (e as Error).message);
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      return sendError(res, 400, 'request body must be a JSON object');
    }
    const original = body as Record<string, unknown>;
    // JSON.parse takes any depth; JSON.stringify overflows the stack on deep
    // nesting. Serialise now so that this is the client's 400, not a 502.
    let pBody: string;
    try {
      pBody = JSON.stringify(prefillBody(original));
    } catch (e) {
      bump(counters.errors, '400');
      return sendError(res, 400, `request body cannot be forwarded: ${(e as Error).message}`);
    }

    let prefill: PdPod;
    let decode: PdPod;
    try {
      prefill = opts.group.choose('prefill', headerOf(req, PREFILL_HEADER), PREFILL_HEADER);
      decode = opts.group.choose('decode', headerOf(req, DECODE_HEADER), DECODE_HEADER);
    } catch (e) {
      if (e instanceof PodChoiceError) {
        bump(counters.errors, '400');
        return sendError(res, 400, e.message);
      }
      if (e instanceof NoPodError) {
        bump(counters.errors, '503');
        return sendError(res, 503, e.message);
      }
      throw e;
    }
    const log = opts.logger.child({
      requestId: boundedRequestId(headerOf(req, 'x-request-id') ?? ''),
      prefill: prefill.id,
      decode: decode.id,
      path,
    });
    const served: Record<string, string> = opts.servedHeaders
      ? { [SERVED_PREFILL_HEADER]: prefill.id, [SERVED_DECODE_HEADER]: decode.id }
      : {};

    try {
      // 1. Prefill: the prompt only; the prefill pod keeps the KV blocks for us.
      const pRes = await call(
        'prefill',
        prefill,
        path,
        upstreamHeaders(req, Buffer.byteLength(pBody)),
        pBody,
        abort.signal,
      );
      bump(counters.prefill, prefill.id);
      const pText = await pRes.body.text();
      if (pRes.statusCode < 200 || pRes.statusCode >= 300) {
        // The model server's own verdict (e.g. a 400 for a bad prompt) is the client's answer.
        log.warn({ status: pRes.statusCode }, 'prefill pod answered with an error');
        bump(counters.errors, String(pRes.statusCode));
        res.writeHead(pRes.statusCode, {
          ...relayableHeaders(pRes.headers),
          ...served,
          'content-length': Buffer.byteLength(pText),
        });
        res.end(pText);
        return;
      }
      let pJson: unknown;
      try {
        pJson = JSON.parse(pText);
      } catch {
        throw new UpstreamError(502, `prefill pod ${prefill.id} answered with a body that is not JSON`);
      }
      const kv = kvTransferParamsOf(pJson);
      if (!kv)
        throw new UpstreamError(
          502,
          `prefill pod ${prefill.id} returned no kv_transfer_params (is it running with a KV connector?)`,
        );

      // 2. Decode: the client's body plus where the KV cache is; its answer goes back as is.
      const dBody = JSON.stringify(decodeBody(original, kv));
      const dRes = await call(
        'decode',
        decode,
        path,
        upstreamHeaders(req, Buffer.byteLength(dBody)),
        dBody,
        abort.signal,
      );
      bump(counters.decode, decode.id);
      if (dRes.statusCode >= 400) bump(counters.errors, String(dRes.statusCode));
      res.writeHead(dRes.statusCode, { ...relayableHeaders(dRes.headers), ...served });
      res.flushHeaders();
      await pipeline(dRes.body, res);
      log.debug({ status: dRes.statusCode, ms: Date.now() - started }, 'pd request done');
    } catch (e) {
      if (abort.signal.aborted) {
        log.info('client went away; upstream calls aborted');
        return;
      }
      if (e instanceof UpstreamError) {
        bump(counters.errors, String(e.status));
        log.warn({ status: e.status, err: e.message }, 'pd request failed');
        return sendError(res, e.status, e.message, served);
      }
      bump(counters.errors, 'stream');
      log.warn({ err: errorMessage(e) }, 'decode stream broke');
      // Headers are out: all we can do is cut the connection so the client sees a truncated answer.
      if (res.headersSent) res.destroy();
      else sendError(res, 502, `PD request failed: ${errorMessage(e)}`, served);
    }
  }

  return {
    handle(req, res) {
      const path = req.url ?? '/';
      const bare = path.split('?', 1)[0]!;
      if (req.method === 'GET' && (bare === '/health' || bare === '/healthz')) {
        const ok = opts.group.list('prefill').length > 0 && opts.group.list('decode').length > 0;
        return sendJson(res, ok ? 200 : 503, {
          status: ok ? 'ok' : 'no prefill or decode pod',
          prefill: opts.group.list('prefill').map((p) => p.id),
          decode: opts.group.list('decode').map((p) => p.id),
        });
      }
      if (req.method === 'GET' && bare === '/stats') return sendJson(res, 200, counters);
      if (!servedPaths.has(bare)) return sendError(res, 404, `no route for ${req.method} ${bare}`);
      if (req.method !== 'POST') return sendError(res, 405, `${bare} takes POST`);
      counters.requests++;
      serve(req, res, path).catch((e: unknown) => {
        opts.logger.error({ err: errorMessage(e) }, 'pd proxy internal error');
        sendError(res, 500, 'internal error in the PD proxy');
      });
    },
    stats: () => counters,
    async close() {
      if (!opts.dispatcher) await (dispatcher as Agent).close();
    },
  };
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

export function createPdProxyServer(proxy: PdProxy): Server {
  return createServer((req, res) => proxy.handle(req, res));
}
