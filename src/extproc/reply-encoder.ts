// The EPP's serializer for the ProcessingResponse messages it writes. Most
// replies of a request are body chunks streamed back (FULL_DUPLEX_STREAMED:
// a 220 KB body is four 62,000-byte chunks, the response one per upstream
// chunk), and their shape is fixed:
//   ProcessingResponse.request_body (3) | response_body (4)
//     BodyResponse.response (1) -> CommonResponse.body_mutation (3)
//     -> BodyMutation.streamed_response (3) -> StreamedBodyResponse{body (1), end_of_stream (2)}
// Those are written here by hand, straight into one reused buffer. The stock
// codec (proto-loader) runs fromObject, then encode into a fresh buffer the
// size of the chunk; grpc-js then copies whatever serialize returns into its
// own framed buffer at once (server-interceptors serializeMessage), so the
// stock buffer was one more off-heap allocation per chunk, and off-heap bytes
// are what drives V8's full collections at these body sizes (a 51 MB heap
// marked every few hundred requests). The scratch buffer is safe to reuse
// because grpc-js copies it before serialize's caller returns.
// Every other reply, and any body reply with a field more or less than that
// shape, goes through the stock codec. The bytes are the stock codec's, byte
// for byte (test/unit/extproc/reply-encoder.test.ts checks both on the same
// messages).
import type { ProcessingResponse } from './messages.js';

type Serialize = (msg: ProcessingResponse) => Buffer;

/** The scratch buffer grows to the largest body reply, up to this; larger ones get their own. */
const SCRATCH_MAX_BYTES = 1024 * 1024;
let scratch = Buffer.allocUnsafe(64 * 1024);

/** True when `obj` has no set field but `key` (fields the stock codec would skip, null/undefined, do not count). */
function onlyField(obj: object, key: string): boolean {
  const o = obj as Record<string, unknown>;
  for (const k in o) if (k !== key && o[k] !== undefined && o[k] !== null) return false;
  return o[key] !== undefined && o[key] !== null && typeof o[key] === 'object';
}

function varintBytes(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5;
}

function writeVarint(out: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at++] = n;
  return at;
}

/** A streamed body chunk reply's phase field tag, body and end-of-stream, or undefined for any other message. */
function streamedBody(
  msg: ProcessingResponse,
): { tag: number; body: Uint8Array | undefined; eos: boolean | undefined } | undefined {
  let tag: number;
  let phase: object;
  if (msg.request_body) {
    if (!onlyField(msg, 'request_body')) return undefined;
    tag = 0x1a;
    phase = msg.request_body;
  } else if (msg.response_body) {
    if (!onlyField(msg, 'response_body')) return undefined;
    tag = 0x22;
    phase = msg.response_body;
  } else return undefined;
  if (!onlyField(phase, 'response')) return undefined;
  const common = (phase as { response: object }).response;
  if (!onlyField(common, 'body_mutation')) return undefined;
  const mutation = (common as { body_mutation: object }).body_mutation;
  if (!onlyField(mutation, 'streamed_response')) return undefined;
  const s = (mutation as { streamed_response: Record<string, unknown> }).streamed_response;
  let body: Uint8Array | undefined;
  let eos: boolean | undefined;
  for (const k in s) {
    const v = s[k];
    if (v === undefined || v === null) continue;
    if (k === 'body' && v instanceof Uint8Array) body = v;
    else if (k === 'end_of_stream' && typeof v === 'boolean') eos = v;
    else return undefined; // another field, or a form the stock codec converts (base64 string, truthy value)
  }
  return { tag, body, eos };
}

/** The EPP's reply serializer: streamed body chunks by hand, everything else by `stock`. */
export function replySerializer(stock: Serialize): Serialize {
  return (msg) => {
    const s = streamedBody(msg);
    if (!s) return stock(msg);
    const bodyLen = s.body ? s.body.length : 0;
    const inner = (s.body ? 1 + varintBytes(bodyLen) + bodyLen : 0) + (s.eos !== undefined ? 2 : 0);
    const mutation = 1 + varintBytes(inner) + inner;
    const common = 1 + varintBytes(mutation) + mutation;
    const phase = 1 + varintBytes(common) + common;
    const total = 1 + varintBytes(phase) + phase;
    let out: Buffer;
    if (total <= SCRATCH_MAX_BYTES) {
      if (scratch.length < total) scratch = Buffer.allocUnsafe(Math.min(SCRATCH_MAX_BYTES, total * 2));
      out = scratch;
    } else out = Buffer.allocUnsafe(total);
    let o = 0;
    out[o++] = s.tag;
    o = writeVarint(out, o, phase);
    out[o++] = 0x0a; // BodyResponse.response (1)
    o = writeVarint(out, o, common);
    out[o++] = 0x1a; // CommonResponse.body_mutation (3)
    o = writeVarint(out, o, mutation);
    out[o++] = 0x1a; // BodyMutation.streamed_response (3)
    o = writeVarint(out, o, inner);
    if (s.body) {
      out[o++] = 0x0a; // StreamedBodyResponse.body (1)
      o = writeVarint(out, o, bodyLen);
      out.set(s.body, o);
      o += bodyLen;
    }
    if (s.eos !== undefined) {
      out[o++] = 0x10; // StreamedBodyResponse.end_of_stream (2)
      out[o++] = s.eos ? 1 : 0;
    }
    return out.subarray(0, o);
  };
}
