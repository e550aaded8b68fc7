// Builders for the ProcessingResponse messages the EPP sends. Kept apart
// from the stream logic so the wire test can pin exactly these shapes.
import {
  setHeader,
  toStruct,
  type HeaderMutation,
  type HeaderValueOption,
  type ProcessingResponse,
} from './messages.js';
import { constantReply, RoutedHeadersMessage } from './reply-encoder.js';

/** GIE splits bodies below Envoy's 64 KiB default buffer; so do we. */
export const BODY_CHUNK_BYTES = 62_000;

export interface RoutingReply {
  setHeaders: HeaderValueOption[];
  removeHeaders: string[];
  /** dynamic_metadata namespace -> fields. */
  metadata: Record<string, Record<string, unknown>>;
}

export function headerMutation(
  r: Pick<RoutingReply, 'setHeaders' | 'removeHeaders'>,
): HeaderMutation | undefined {
  if (r.setHeaders.length === 0 && r.removeHeaders.length === 0) return undefined;
  const m: HeaderMutation = {};
  if (r.setHeaders.length) m.set_headers = r.setHeaders;
  if (r.removeHeaders.length) m.remove_headers = r.removeHeaders;
  return m;
}

/**
 * Request-headers reply carrying the routing decision (FULL_DUPLEX_STREAMED,
 * header-only requests). Its encoder form is made from `r` at once
 * (reply-encoder.ts RoutedHeadersMessage): the reply must not change after.
 */
export function routedHeadersReply(r: RoutingReply): ProcessingResponse {
  const phase = { response: { header_mutation: headerMutation(r), clear_route_cache: true } };
  const metadata = Object.keys(r.metadata).length ? toStruct(r.metadata) : undefined;
  return new RoutedHeadersMessage(phase, metadata, r) as ProcessingResponse;
}

/** BUFFERED mode: the decision rides on the body reply (headers are not yet sent upstream). */
export function routedBodyReply(r: RoutingReply, body?: Buffer): ProcessingResponse {
  const msg: ProcessingResponse = {
    request_body: {
      response: {
        header_mutation: headerMutation(r),
        clear_route_cache: true,
        ...(body ? { body_mutation: { body } } : {}),
      },
    },
  };
  if (Object.keys(r.metadata).length) msg.dynamic_metadata = toStruct(r.metadata);
  return msg;
}

/** "Continue unchanged" replies, one per phase (frozen, and serialized once: reply-encoder.ts constantReply). */
export const CONTINUE_REQUEST_HEADERS: ProcessingResponse = constantReply({
  request_headers: { response: {} },
});
export const CONTINUE_REQUEST_BODY: ProcessingResponse = constantReply({ request_body: { response: {} } });
export const CONTINUE_RESPONSE_HEADERS: ProcessingResponse = constantReply({
  response_headers: { response: {} },
});
export const CONTINUE_RESPONSE_BODY: ProcessingResponse = constantReply({ response_body: { response: {} } });
/** Response headers when the body may change length (model name restored). */
export const RESPONSE_HEADERS_DROP_LENGTH: ProcessingResponse = constantReply({
  response_headers: { response: { header_mutation: { remove_headers: ['content-length'] } } },
});

/** STREAMED/BUFFERED response chunk replaced (model name restored). */
export function replacedResponseBody(body: Buffer): ProcessingResponse {
  return { response_body: { response: { body_mutation: { body } } } };
}
export const REQUEST_TRAILERS_REPLY: ProcessingResponse = constantReply({ request_trailers: {} });
export const RESPONSE_TRAILERS_REPLY: ProcessingResponse = constantReply({ response_trailers: {} });

/**
 * FULL_DUPLEX_STREAMED body replies: the body cut into ≤62,000-byte
 * streamed_response chunks, end_of_stream on the last one only (when `eos`);
 * an empty body is one empty chunk.
 */
export function streamedBodyReplies(
  phase: 'request_body' | 'response_body',
  body: Buffer,
  eos: boolean,
): ProcessingResponse[] {
  const out: ProcessingResponse[] = [];
  let off = 0;
  do {
    const end = Math.min(off + BODY_CHUNK_BYTES, body.length);
    const last = end >= body.length;
    // A body of one chunk goes as it is (no view of it to allocate).
    const chunk = off === 0 && last ? body : body.subarray(off, end);
    out.push({
      [phase]: {
        response: {
          body_mutation: { streamed_response: { body: chunk, end_of_stream: last && eos } },
        },
      },
    });
    off = end;
  } while (off < body.length);
  return out;
}

/** An HTTP answer from the EPP itself (errors), with a JSON body. */
export function immediateReply(
  status: number,
  body: string,
  requestId: string,
  details: string,
  extraHeaders: Readonly<Record<string, string>> = {},
): ProcessingResponse {
  const set = [setHeader('content-type', 'application/json'), setHeader('x-request-id', requestId)];
  for (const [k, v] of Object.entries(extraHeaders)) set.push(setHeader(k, v));
  return {
    immediate_response: {
      status: { code: status },
      headers: { set_headers: set },
      body: Buffer.from(body, 'utf8'),
      details,
    },
  };
}
