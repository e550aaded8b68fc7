// One HTTP exchange through the dev gateway, in the order Envoy's ext_proc
// filter runs it: request headers + body to the EPP -> apply its header
// mutations and body -> forward to the endpoint it chose (fallbacks on
// connect failure) -> response headers and body back through the EPP ->
// client. The gateway never routes on a destination the client supplied.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { Agent, request, type Dispatcher } from 'undici';
import {
  destinationOf,
  ExtProcClient,
  ImmediateResponseError,
  type ExtProcExchange,
  type HeaderList,
  type ImmediateVerdict,
  type RequestBodyMode,
  type ResponseBodyMode,
} from './extproc-client.js';
import {
  classifyUpstreamError,
  errorMessage,
  isHopByHop,
  originForm,
  readBody,
  BodyTooLargeError,
  sendError,
  sendJson,
} from './http-util.js';
import { boundedRequestId } from '../request/request-id.js';
import { GatewayStats } from './stats.js';
import { DESTINATION_HEADER, SERVED_KEY } from '../common/wire-headers.js';

/** Paths the gateway answers itself (like Envoy's admin, but on the same port for convenience). */
export const ADMIN_PREFIX = '/_gateway/';

export type ProcessingMode = 'full-duplex' | 'buffered';

export interface GatewayOptions {
  /** `host:port` of the EPP's ext_proc server. */
  epp: string;
  eppTls?: boolean;
  mode: ProcessingMode;
  /** Upstream: wait this long for response headers, and at most this long between body chunks. */
  timeoutMs: number;
  /** How long the EPP may take to answer the request phase (Envoy's message_timeout). */
  eppTimeoutMs: number;
  connectTimeoutMs?: number;
  destinationHeader?: string;
  maxBodyBytes?: number;
  logger: Logger;
}

export interface Gateway {
  handle(req: IncomingMessage, res: ServerResponse): void;
  stats: GatewayStats;
  close(): Promise<void>;
}

class GatewayError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** The ext_proc request header list: pseudo-headers first, then the client's headers, as Envoy sends them. */
export function requestHeaderList(
  req: IncomingMessage,
  destinationHeader: string,
  path = originForm(req.url ?? '/') ?? '/',
): HeaderList {
  const list: HeaderList = [
    [':method', req.method ?? 'GET'],
    [':path', path],
    [':authority', req.headers.host ?? 'localhost'],
    [':scheme', 'http'],
  ];
  const raw = req.rawHeaders;
  let hasRequestId = false;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    // Host travels as :authority; a client must not choose the destination itself.
    if (k === 'host' || k === destinationHeader || isHopByHop(k)) continue;
    if (k === 'x-request-id') hasRequestId = true;
    list.push([k, raw[i + 1]!]);
  }
  // Envoy generates a request id when the client sent none.
  if (!hasRequestId) list.push(['x-request-id', randomUUID()]);
  return list;
}

/** Upstream request headers from the mutated list: no pseudo-headers, :authority as host. */
function upstreamHeaders(list: HeaderList, bodyLength: number): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k0, v] of list) {
    const k = k0.toLowerCase();
    if (k.startsWith(':') || k === 'content-length' || isHopByHop(k)) continue;
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const authority = list.find(([k]) => k === ':authority')?.[1];
  if (authority) out.host = authority;
  if (bodyLength > 0 || list.some(([k]) => k.toLowerCase() === 'content-length'))
    out['content-length'] = String(bodyLength);
  return out;
}

function pseudo(list: HeaderList, name: string): string | undefined {
  return list.find(([k]) => k === name)?.[1];
}

function validHostPort(s: string): boolean {
  return /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(s);
}

/** Response headers for the client: pseudo-headers and hop-by-hop headers dropped, repeats kept. */
function clientHeaders(list: HeaderList): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k0, v] of list) {
    const k = k0.toLowerCase();
    if (k.startsWith(':') || isHopByHop(k)) continue;
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [String(prev), v];
  }
  return out;
}

function sendImmediate(res: ServerResponse, v: ImmediateVerdict): void {
  const status = v.status >= 200 && v.status <= 599 ? v.status : 500;
  const headers = clientHeaders(v.headers);
  headers['content-length'] = v.body.length;
  if (!headers['content-type']) headers['content-type'] = 'text/plain';
  res.writeHead(status, headers);
  res.end(v.body);
}

export function createGateway(opts: GatewayOptions): Gateway {
  const destHeader = (opts.destinationHeader ?? DESTINATION_HEADER).toLowerCase();
  const requestMode: RequestBodyMode = opts.mode === 'buffered' ? 'BUFFERED' : 'FULL_DUPLEX_STREAMED';
  const responseMode: ResponseBodyMode = opts.mode === 'buffered' ? 'BUFFERED' : 'FULL_DUPLEX_STREAMED';
  const client = new ExtProcClient({
    target: opts.epp,
    tls: opts.eppTls ?? false,
    requestBodyMode: requestMode,
    responseBodyMode: responseMode,
  });
  const dispatcher = new Agent({
    connectTimeout: opts.connectTimeoutMs ?? 3_000,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
  });
  const maxBody = opts.maxBodyBytes ?? 64 * 1024 * 1024;
  const stats = new GatewayStats();

  async function forward(
    endpoints: string[],
    method: string,
    path: string,
    headers: Record<string, string | string[]>,
    body: Buffer,
    signal: AbortSignal,
    log: Logger,
  ): Promise<{ endpoint: string; res: Dispatcher.ResponseData }> {
    let lastErr = 'no endpoint';
    for (const endpoint of endpoints) {
      try {
        const res = await request(`http://${endpoint}${path}`, {
          method: method as Dispatcher.HttpMethod,
          headers,
          body: body.length > 0 || method === 'POST' || method === 'PUT' ? body : undefined,
          dispatcher,
          signal,
        });
        return { endpoint, res };
      } catch (e) {
        if (signal.aborted) throw e;
        const kind = classifyUpstreamError(e);
        stats.upstreamFailure(endpoint);
        lastErr = errorMessage(e);
        // Only a failed connect proves nothing reached the endpoint; anything else may have run there.
        if (kind === 'connect') {
          log.warn({ endpoint, err: errorMessage(e) }, 'endpoint unreachable; trying the next one');
          continue;
        }
        // The client hears what failed, never which internal pod (the log says that).
        log.warn({ endpoint, err: errorMessage(e) }, 'upstream request failed');
        throw new GatewayError(
          kind === 'timeout' ? 504 : 502,
          kind === 'timeout' ? 'upstream request timed out' : 'upstream request failed',
        );
      }
    }
    log.warn({ endpoints, err: lastErr }, 'no endpoint reachable');
    throw new GatewayError(503, 'no endpoint reachable');
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const abort = new AbortController();
    let ex: ExtProcExchange | undefined;
    res.on('close', () => {
      if (!res.writableFinished) {
        abort.abort();
        ex?.cancel();
      }
    });

    const target = originForm(req.url ?? '/');
    if (target === undefined) {
      return sendError(res, 400, 'request target must be a path or an absolute http(s) URL');
    }
    const headerList = requestHeaderList(req, destHeader, target);
    const requestId = pseudo(headerList, 'x-request-id');
    const log = opts.logger.child({ requestId: boundedRequestId(requestId ?? '') });
    const hasBody =
      req.headers['content-length'] !== undefined
        ? req.headers['content-length'] !== '0'
        : req.headers['transfer-encoding'] !== undefined;
    let body: Buffer | undefined;
    if (hasBody) {
      try {
        body = await readBody(req, maxBody);
      } catch (e) {
        if (e instanceof BodyTooLargeError) return sendError(res, 413, e.message);
        throw e;
      }
    }

    // 1. Request phase with the EPP.
    ex = client.open();
    let verdict;
    try {
      const timer = new Promise<never>((_, reject) => {
        const t = setTimeout(
          () => reject(new GatewayError(504, `the EPP did not answer within ${opts.eppTimeoutMs} ms`)),
          opts.eppTimeoutMs,
        );
        t.unref();
      });
      verdict = await Promise.race([ex.sendRequest({ headers: headerList, body }), timer]);
    } catch (e) {
      ex.cancel();
      if (abort.signal.aborted) return;
      stats.eppFailure();
      const status = e instanceof GatewayError ? e.status : 500;
      log.error({ err: errorMessage(e), epp: opts.epp }, 'ext_proc request phase failed');
      return sendError(res, status, `ext_proc: ${errorMessage(e)}`);
    }
    if (verdict.kind === 'immediate') {
      ex.end();
      stats.immediate(verdict.status);
      log.info({ status: verdict.status }, 'EPP answered with an immediate response');
      return sendImmediate(res, verdict);
    }

    // 2. Upstream: the EPP's choice, primary first.
    const endpoints = destinationOf(verdict, destHeader).filter(validHostPort);
    if (endpoints.length === 0) {
      ex.cancel();
      stats.noDestination();
      return sendError(res, 503, 'the EPP named no destination endpoint');
    }
    const method = pseudo(verdict.headers, ':method') ?? req.method ?? 'GET';
    const path = pseudo(verdict.headers, ':path') ?? req.url ?? '/';
    let upstream;
    try {
      upstream = await forward(
        endpoints,
        method,
        path,
        upstreamHeaders(verdict.headers, verdict.body.length),
        verdict.body,
        abort.signal,
        log,
      );
    } catch (e) {
      ex.cancel();
      if (abort.signal.aborted) return;
      if (e instanceof GatewayError) return sendError(res, e.status, e.message);
      log.warn({ endpoints, err: errorMessage(e) }, 'upstream failed');
      return sendError(res, 502, 'upstream request failed');
    }
    const { endpoint, res: up } = upstream;
    stats.routed(endpoint, endpoint !== endpoints[0]);

    // 3. Response phase: headers, then the body, each through the EPP.
    const respList: HeaderList = [[':status', String(up.statusCode)]];
    for (const [k, v] of Object.entries(up.headers)) {
      if (v === undefined || isHopByHop(k)) continue;
      for (const one of Array.isArray(v) ? v : [v]) respList.push([k, one]);
    }
    const bodyless =
      up.statusCode === 204 ||
      up.statusCode === 304 ||
      method === 'HEAD' ||
      up.headers['content-length'] === '0';
    const served = { 'envoy.lb': { [SERVED_KEY]: endpoint } };
    let outHeaders: HeaderList;
    try {
      outHeaders = await ex.sendResponseHeaders(respList, bodyless, served);
    } catch (e) {
      if (e instanceof ImmediateResponseError) {
        up.body.destroy();
        ex.end();
        return sendImmediate(res, e.verdict);
      }
      // The EPP failing now must not lose an answer the model server already produced.
      stats.eppFailure();
      log.warn(
        { err: errorMessage(e) },
        'ext_proc response phase failed; passing the response through unprocessed',
      );
      ex.cancel();
      ex = undefined;
      outHeaders = respList;
    }
    const status = Number(pseudo(outHeaders, ':status') ?? up.statusCode) || up.statusCode;
    const toClient = clientHeaders(outHeaders);
    // The body may be rewritten by the EPP; let Node frame it.
    delete toClient['content-length'];
    res.writeHead(status, toClient);
    res.flushHeaders();
    if (bodyless) {
      up.body.resume();
      res.end();
      ex?.end();
      return;
    }
    try {
      const source = up.body as AsyncIterable<Buffer>;
      const chunks = ex ? ex.streamResponseBody(source) : source;
      for await (const c of chunks) {
        if (c.length > 0 && !res.write(c)) await new Promise<void>((r) => res.once('drain', r));
      }
      res.end();
      ex?.end();
      log.debug({ endpoint, status, ms: Date.now() - started }, 'request done');
    } catch (e) {
      ex?.cancel();
      if (abort.signal.aborted) return;
      stats.streamFailure(endpoint);
      log.warn({ endpoint, err: errorMessage(e) }, 'response stream broke');
      res.destroy();
    }
  }

  return {
    handle(req, res) {
      const url = req.url ?? '/';
      if (url.startsWith(ADMIN_PREFIX)) {
        if (url === `${ADMIN_PREFIX}healthz`) return sendJson(res, 200, { status: 'ok', epp: opts.epp });
        if (url === `${ADMIN_PREFIX}stats`) return sendJson(res, 200, stats.snapshot());
        return sendError(res, 404, `no gateway admin path ${url}`);
      }
      stats.request();
      serve(req, res).catch((e: unknown) => {
        opts.logger.error({ err: errorMessage(e) }, 'gateway internal error');
        sendError(res, 500, 'internal error in the gateway');
      });
    },
    stats,
    async close() {
      client.close();
      await dispatcher.close();
    },
  };
}
