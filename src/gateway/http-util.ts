// Small HTTP helpers shared by the two proxies of the local stack
// (gateway-dev and pd-proxy): bounded body reads, hop-by-hop header
// filtering, OpenAI-style error answers and upstream error classification.
import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { errors } from 'undici';
import { openAIErrorBody } from '../request/errors.js';

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1). */
const hopByHop = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // 100-continue is negotiated per hop; forwarding it makes upstream clients fail.
  'expect',
]);

export function isHopByHop(name: string): boolean {
  return hopByHop.has(name.toLowerCase());
}

export { BodyTooLargeError, readBody } from '../request/read-body.js';

/** Answers with an OpenAI-style error body unless headers already went out. */
export function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  extra: OutgoingHttpHeaders = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = openAIErrorBody(status, message);
  res.writeHead(status, {
    ...extra,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Client headers as a flat lower-case map (repeated headers joined as HTTP allows). */
export function flatHeaders(h: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined) continue;
    out[k] = Array.isArray(v) ? (k === 'set-cookie' ? v.join('\n') : v.join(', ')) : v;
  }
  return out;
}

/** Upstream response headers safe to relay to the client unchanged. */
export function relayableHeaders(h: Record<string, string | string[] | undefined>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (v === undefined || isHopByHop(k)) continue;
    out[k] = v;
  }
  return out;
}

export type UpstreamFailure = 'connect' | 'timeout' | 'other';

/**
 * Why an upstream call failed before a response arrived: `connect` (refused,
 * unreachable, DNS, connect timeout: nothing was sent, so a fallback is safe),
 * `timeout` (no answer in time), `other`.
 */
export function classifyUpstreamError(err: unknown): UpstreamFailure {
  if (err instanceof errors.ConnectTimeoutError) return 'connect';
  if (err instanceof errors.HeadersTimeoutError || err instanceof errors.BodyTimeoutError) return 'timeout';
  const codes = new Set<string>();
  for (let e: unknown = err, i = 0; e && i < 4; e = (e as { cause?: unknown }).cause, i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') codes.add(code);
  }
  for (const c of [
    'ECONNREFUSED',
    'EHOSTUNREACH',
    'ENETUNREACH',
    'ENOTFOUND',
    'EAI_AGAIN',
    'UND_ERR_CONNECT_TIMEOUT',
    'EADDRNOTAVAIL',
  ]) {
    if (codes.has(c)) return 'connect';
  }
  if (codes.has('UND_ERR_HEADERS_TIMEOUT') || codes.has('UND_ERR_BODY_TIMEOUT')) return 'timeout';
  return 'other';
}

export function errorMessage(err: unknown): string {
  const e = err as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const code = e?.code ?? e?.cause?.code;
  const msg = e?.message || e?.cause?.message || String(err);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

/**
 * The path (origin-form) a request target stands for: itself when it is a
 * path, the path and query of an absolute-form `http(s)://host/path` target
 * (RFC 9112 §3.2.2: proxies receive those); undefined for anything else
 * (`*`, authority-form, junk). Appending an absolute URL to the upstream
 * address made a URL that failed, and the 502 named the internal pod.
 */
export function originForm(target: string): string | undefined {
  if (target.startsWith('/')) return target;
  if (!/^https?:\/\//i.test(target)) return undefined;
  try {
    const u = new URL(target);
    return `${u.pathname}${u.search}`;
  } catch {
    return undefined;
  }
}
