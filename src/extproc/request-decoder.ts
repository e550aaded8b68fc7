// The EPP's deserializer for the ProcessingRequest messages the gateway
// sends. Every message of a request is one of a handful of shapes: request
// or response headers (a header map, end_of_stream, the protocol_config on
// the first), a body chunk (bytes, end_of_stream), trailers. Those are read
// here by hand, straight into the plain objects proto-loader would produce
// (keepCase, enums as names, bytes as Buffers, the oneof's member named under
// `request`, fields absent on the wire left out, keys in field order). The
// stock path decodes into protobufjs message instances first and then
// copies them into those objects with toObject: ~3.4 us for a request's
// header message, a few per request at 2 KB.
// Body bytes stay views of the Buffer grpc-js decoded the message from, as
// the stock decoder's do (nothing writes that Buffer afterwards).
// Anything else goes to the stock decoder, whole: metadata_context,
// attributes, a field this file does not know, a field twice, two oneof
// members, an unknown enum value, a wire type other than the schema's, a
// varint of 5 bytes or more, a length past the end. So a message is either
// read here exactly as the stock decoder reads it, or by the stock decoder
// itself, errors included (test/unit/extproc/request-decoder.test.ts
// compares both on generated and mutated messages).
// The messages are ProcessingRequest (messages.ts) as proto-loader gives
// them; the shapes are restated here so that this module imports nothing
// from the ones that load it (proto.ts, through messages.ts).
type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';
type RequestKind =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers';
interface HeaderValue {
  key: string;
  value?: string;
  raw_value?: Buffer;
}
interface HttpHeaders {
  headers?: { headers?: HeaderValue[] };
  end_of_stream?: boolean;
}
interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
  end_of_stream_without_message?: boolean;
  grpc_message_compressed?: boolean;
}
interface HttpTrailers {
  trailers?: { headers?: HeaderValue[] };
}
interface ProtocolConfiguration {
  request_body_mode?: BodySendMode;
  response_body_mode?: BodySendMode;
  send_body_without_waiting_for_header_response?: boolean;
}
interface ProcessingRequest {
  request?: RequestKind;
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  observability_mode?: boolean;
  protocol_config?: ProtocolConfiguration;
}

type Deserialize = (buf: Buffer) => unknown;

const KINDS: readonly RequestKind[] = [
  'request_headers',
  'response_headers',
  'request_body',
  'response_body',
  'request_trailers',
  'response_trailers',
];

const BODY_MODES: readonly BodySendMode[] = [
  'NONE',
  'STREAMED',
  'BUFFERED',
  'BUFFERED_PARTIAL',
  'FULL_DUPLEX_STREAMED',
  'GRPC',
];

const VARINT = 0;
const LEN = 2;

/** Read position in the message being decoded (decoding is synchronous, one message at a time). */
let at = 0;

/** A varint below 2^28 (at most 4 bytes), or -1: longer, or running past `end`. */
function varint(buf: Buffer, end: number): number {
  let v = 0;
  for (let shift = 0; shift < 28; shift += 7) {
    if (at >= end) return -1;
    const b = buf[at++]!;
    v |= (b & 0x7f) << shift;
    if (b < 0x80) return v;
  }
  return -1;
}

/** The end of a length-delimited field whose length is at `at`, or -1. */
function delimitedEnd(buf: Buffer, end: number): number {
  const len = varint(buf, end);
  if (len < 0 || at + len > end) return -1;
  return at + len;
}

function headerValue(buf: Buffer, end: number): HeaderValue | undefined {
  let key: string | undefined;
  let value: string | undefined;
  let raw: Buffer | undefined;
  while (at < end) {
    const tag = varint(buf, end);
    if ((tag & 7) !== LEN) return undefined;
    const stop = delimitedEnd(buf, end);
    if (stop < 0) return undefined;
    const field = tag >>> 3;
    if (field === 1 && key === undefined) key = buf.toString('utf8', at, stop);
    else if (field === 2 && value === undefined) value = buf.toString('utf8', at, stop);
    else if (field === 3 && raw === undefined) raw = stop > at ? buf.subarray(at, stop) : Buffer.alloc(0);
    else return undefined;
    at = stop;
  }
  const h = {} as HeaderValue;
  if (key !== undefined) h.key = key;
  if (value !== undefined) h.value = value;
  if (raw !== undefined) h.raw_value = raw;
  return h;
}

/** A HeaderMap: `{ headers: [...] }`, or `{}` without headers. */
function headerMap(buf: Buffer, end: number): { headers?: HeaderValue[] } | undefined {
  const headers: HeaderValue[] = [];
  while (at < end) {
    if (varint(buf, end) !== ((1 << 3) | LEN)) return undefined;
    const stop = delimitedEnd(buf, end);
    if (stop < 0) return undefined;
    const h = headerValue(buf, stop);
    if (!h) return undefined;
    headers.push(h);
  }
  return headers.length > 0 ? { headers } : {};
}

function httpHeaders(buf: Buffer, end: number): HttpHeaders | undefined {
  let map: { headers?: HeaderValue[] } | undefined;
  let eos: boolean | undefined;
  while (at < end) {
    const tag = varint(buf, end);
    if (tag === ((1 << 3) | LEN) && map === undefined) {
      const stop = delimitedEnd(buf, end);
      if (stop < 0) return undefined;
      map = headerMap(buf, stop);
      if (!map) return undefined;
    } else if (tag === ((3 << 3) | VARINT) && eos === undefined) {
      const v = varint(buf, end);
      if (v < 0) return undefined;
      eos = v !== 0;
    } else return undefined; // attributes (2), or anything unexpected
  }
  const h: HttpHeaders = {};
  if (map !== undefined) h.headers = map;
  if (eos !== undefined) h.end_of_stream = eos;
  return h;
}

function httpBody(buf: Buffer, end: number): HttpBody | undefined {
  let body: Buffer | undefined;
  const flags: Array<boolean | undefined> = [undefined, undefined, undefined];
  while (at < end) {
    const tag = varint(buf, end);
    if (tag === ((1 << 3) | LEN) && body === undefined) {
      const stop = delimitedEnd(buf, end);
      if (stop < 0) return undefined;
      body = stop > at ? buf.subarray(at, stop) : Buffer.alloc(0);
      at = stop;
    } else if (
      (tag & 7) === VARINT &&
      tag >>> 3 >= 2 &&
      tag >>> 3 <= 4 &&
      flags[(tag >>> 3) - 2] === undefined
    ) {
      const v = varint(buf, end);
      if (v < 0) return undefined;
      flags[(tag >>> 3) - 2] = v !== 0;
    } else return undefined;
  }
  const b: HttpBody = {};
  if (body !== undefined) b.body = body;
  if (flags[0] !== undefined) b.end_of_stream = flags[0];
  if (flags[1] !== undefined) b.end_of_stream_without_message = flags[1];
  if (flags[2] !== undefined) b.grpc_message_compressed = flags[2];
  return b;
}

function httpTrailers(buf: Buffer, end: number): HttpTrailers | undefined {
  let map: { headers?: HeaderValue[] } | undefined;
  while (at < end) {
    if (varint(buf, end) !== ((1 << 3) | LEN) || map !== undefined) return undefined;
    const stop = delimitedEnd(buf, end);
    if (stop < 0) return undefined;
    map = headerMap(buf, stop);
    if (!map) return undefined;
  }
  return map !== undefined ? { trailers: map } : {};
}

function protocolConfig(buf: Buffer, end: number): ProtocolConfiguration | undefined {
  let request: BodySendMode | undefined;
  let response: BodySendMode | undefined;
  let sendWithoutWaiting: boolean | undefined;
  while (at < end) {
    const tag = varint(buf, end);
    if ((tag & 7) !== VARINT) return undefined;
    const v = varint(buf, end);
    if (v < 0) return undefined;
    const field = tag >>> 3;
    if (field === 3 && sendWithoutWaiting === undefined) sendWithoutWaiting = v !== 0;
    else {
      // An enum value this schema does not name stays a number in the stock decoder's output.
      const mode = BODY_MODES[v];
      if (mode === undefined) return undefined;
      if (field === 1 && request === undefined) request = mode;
      else if (field === 2 && response === undefined) response = mode;
      else return undefined;
    }
  }
  const pc: ProtocolConfiguration = {};
  if (request !== undefined) pc.request_body_mode = request;
  if (response !== undefined) pc.response_body_mode = response;
  if (sendWithoutWaiting !== undefined) pc.send_body_without_waiting_for_header_response = sendWithoutWaiting;
  return pc;
}

/** The message as the stock decoder would give it, or undefined for one this file leaves to it. */
export function decodeProcessingRequest(buf: Buffer): ProcessingRequest | undefined {
  at = 0;
  const end = buf.length;
  let kind: RequestKind | undefined;
  let member: HttpHeaders | HttpBody | HttpTrailers | undefined;
  let observability: boolean | undefined;
  let config: ProtocolConfiguration | undefined;
  while (at < end) {
    const tag = varint(buf, end);
    const field = tag >>> 3;
    if (tag < 0) return undefined;
    if (field >= 2 && field <= 7 && (tag & 7) === LEN && kind === undefined) {
      const stop = delimitedEnd(buf, end);
      if (stop < 0) return undefined;
      member =
        field <= 3 ? httpHeaders(buf, stop) : field <= 5 ? httpBody(buf, stop) : httpTrailers(buf, stop);
      if (!member) return undefined;
      kind = KINDS[field - 2]!;
    } else if (field === 10 && (tag & 7) === VARINT && observability === undefined) {
      const v = varint(buf, end);
      if (v < 0) return undefined;
      observability = v !== 0;
    } else if (field === 11 && (tag & 7) === LEN && config === undefined) {
      const stop = delimitedEnd(buf, end);
      if (stop < 0) return undefined;
      config = protocolConfig(buf, stop);
      if (!config) return undefined;
    } else return undefined; // metadata_context (8), attributes (9), or anything unexpected
  }
  const msg: ProcessingRequest = {};
  if (kind !== undefined) {
    (msg as Record<string, unknown>)[kind] = member;
    msg.request = kind;
  }
  if (observability !== undefined) msg.observability_mode = observability;
  if (config !== undefined) msg.protocol_config = config;
  return msg;
}

/** grpc-js's requestDeserialize for the EPP: the hand decoder, else the stock one. */
export function requestDeserializer(stock: Deserialize): Deserialize {
  return (buf) => (Buffer.isBuffer(buf) && decodeProcessingRequest(buf)) || stock(buf);
}
