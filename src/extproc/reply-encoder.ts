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
// because grpc-js copies it before serialize's caller returns (1.14:
// serializeMessage, response compression unsupported). A grpc-js that kept
// the returned buffer would send corrupted bodies: the 220 KB FULL_DUPLEX
// integration test compares every byte that comes back.
// The routing decision's header reply (header mutation, clear_route_cache,
// envoy.lb metadata of strings) is the other message of every request and
// is written by hand too: protobufjs's fromObject + encode of its headers and
// Struct was a fifth of the EPP's own work per 2 KB request.
// Every other reply, and any reply with a field more or less than those
// shapes, goes through the stock codec. The bytes are the stock codec's, byte
// for byte (test/unit/extproc/reply-encoder.test.ts checks both on the same
// messages).
// The messages are ProcessingResponse (messages.ts) as proto-loader takes
// them; only the fields read here are typed, so that this module imports
// nothing from the ones that load it (proto.ts).
interface ProcessingResponse {
  request_headers?: object;
  request_body?: object;
  response_body?: object;
  dynamic_metadata?: object;
}

type Serialize = (msg: object) => Buffer;

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

const APPEND_ACTIONS: Readonly<Record<string, number>> = {
  APPEND_IF_EXISTS_OR_ADD: 0,
  ADD_IF_ABSENT: 1,
  OVERWRITE_IF_EXISTS_OR_ADD: 2,
  OVERWRITE_IF_EXISTS: 3,
};

/**
 * Strings up to this many characters are measured and, when ASCII, written
 * in JavaScript: the reply's header names, values and metadata keys are
 * short, and each native Buffer.byteLength / write call cost more than the
 * loop (a dozen of each per routed reply).
 */
const SHORT_ASCII = 128;

/** `Buffer.byteLength(s, 'utf8')`, without the native call for a short ASCII string. */
function utf8Length(s: string): number {
  const n = s.length;
  if (n > SHORT_ASCII) return Buffer.byteLength(s);
  for (let i = 0; i < n; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s);
  return n;
}

/** A length-delimited field's size: tag + length + body. */
const delimited = (n: number) => 1 + varintBytes(n) + n;

interface SetHeader {
  key: string;
  keyBytes: number;
  raw: Uint8Array;
  /** HeaderAppendAction number, -1 when unset. */
  action: number;
  /** HeaderValue's size. */
  valueSize: number;
  /** HeaderValueOption's size. */
  size: number;
}

interface MetadataField {
  key: string;
  keyBytes: number;
  value: string;
  valueBytes: number;
  /** Value{string_value}'s size. */
  valueSize: number;
  /** The map entry's size. */
  size: number;
}

interface MetadataNamespace {
  key: string;
  keyBytes: number;
  fields: MetadataField[];
  /** Struct's size. */
  structSize: number;
  /** Value{struct_value}'s size. */
  valueSize: number;
  size: number;
}

/** The pieces of a routed headers reply (replies.ts routedHeadersReply), or undefined for any other shape. */
interface RoutedHeaders {
  setHeaders: SetHeader[];
  removeHeaders: Array<{ key: string; bytes: number }>;
  /** header_mutation present, and its size. */
  mutation: boolean;
  mutationSize: number;
  clearRouteCache: boolean | undefined;
  commonSize: number;
  metadata: MetadataNamespace[] | undefined;
  metadataSize: number;
}

/** A header to set as replies.ts builds it (messages.ts setHeader): a key, raw bytes, maybe an append action. */
interface SetHeaderOption {
  header: { key?: unknown; value?: unknown; raw_value?: unknown };
  append_action?: unknown;
  keep_empty_value?: unknown;
}

/** What replies.ts routedHeadersReply builds a reply from (its RoutingReply). */
export interface RoutedHeadersParts {
  setHeaders: readonly SetHeaderOption[];
  removeHeaders: readonly string[];
  metadata: Readonly<Record<string, unknown>>;
}

/**
 * A routed header reply (replies.ts routedHeadersReply) that carries its
 * encoder form, made from the parts it was built of: serializing it skips
 * reading the message back (routedHeaders' shape checks were most of its
 * cost). Its fields are the plain message's; the encoder form is a private
 * field, which the stock codec, tests' deep equality and enumeration do not
 * see. The message must not change once built; its phase and metadata
 * objects are compared at serialization all the same, and a reply that
 * fails that is read back as any other. (A WeakMap from message to form
 * did the same at four times the cost of building the reply: its
 * short-lived keys are ephemerons to the collector.)
 */
export class RoutedHeadersMessage {
  declare request_headers: object;
  declare dynamic_metadata?: object;
  readonly #phase: object;
  readonly #metadata: object | undefined;
  readonly #form: RoutedHeaders | undefined;

  constructor(requestHeaders: object, dynamicMetadata: object | undefined, parts: RoutedHeadersParts) {
    this.request_headers = requestHeaders;
    if (dynamicMetadata !== undefined) this.dynamic_metadata = dynamicMetadata;
    this.#phase = requestHeaders;
    this.#metadata = dynamicMetadata;
    this.#form = routedHeadersOfParts(parts);
  }

  /** The encoder form, unless the message has been changed or its parts were outside it. */
  static form(m: RoutedHeadersMessage): RoutedHeaders | undefined {
    return m.#phase === m.request_headers && m.#metadata === m.dynamic_metadata ? m.#form : undefined;
  }
}

/** Adds one set_headers entry (key, raw value, append action or -1) to `out`'s mutation. */
function addSetHeader(out: RoutedHeaders, key: string, raw: Uint8Array, action: number): void {
  const keyBytes = utf8Length(key);
  const valueSize = delimited(keyBytes) + delimited(raw.length);
  const size = delimited(valueSize) + (action >= 0 ? 2 : 0);
  out.setHeaders.push({ key, keyBytes, raw, action, valueSize, size });
  out.mutationSize += delimited(size);
}

/** Adds one remove_headers entry to `out`'s mutation. */
function addRemoveHeader(out: RoutedHeaders, key: string): void {
  const bytes = utf8Length(key);
  out.removeHeaders.push({ key, bytes });
  out.mutationSize += delimited(bytes);
}

/** One string field of a metadata namespace's Struct. */
function metadataField(key: string, value: string): MetadataField {
  const keyBytes = utf8Length(key);
  const valueBytes = utf8Length(value);
  const valueSize = delimited(valueBytes);
  const size = delimited(keyBytes) + delimited(valueSize);
  return { key, keyBytes, value, valueBytes, valueSize, size };
}

/** Adds a metadata namespace with its fields to `out` (whose metadata list exists). */
function addNamespace(out: RoutedHeaders, ns: string, fields: MetadataField[]): void {
  let structSize = 0;
  for (const f of fields) structSize += delimited(f.size);
  const keyBytes = utf8Length(ns);
  const valueSize = delimited(structSize);
  const size = delimited(keyBytes) + delimited(valueSize);
  out.metadata!.push({ key: ns, keyBytes, fields, structSize, valueSize, size });
  out.metadataSize += delimited(size);
}

/**
 * The encoder form of the reply routedHeadersReply builds from `parts` with
 * clear_route_cache true (header_mutation from the non-empty lists, and
 * dynamic_metadata the parts' metadata as a Struct when it has a namespace).
 * Undefined for parts outside the hand encoder's shape (a header with
 * `value` or keep_empty_value, metadata that is not namespace -> string
 * fields): routedHeaders or the stock codec reads the message then.
 */
function routedHeadersOfParts(parts: RoutedHeadersParts): RoutedHeaders | undefined {
  const out: RoutedHeaders = {
    setHeaders: [],
    removeHeaders: [],
    mutation: parts.setHeaders.length > 0 || parts.removeHeaders.length > 0,
    mutationSize: 0,
    clearRouteCache: true,
    commonSize: 0,
    metadata: undefined,
    metadataSize: 0,
  };
  for (const o of parts.setHeaders) {
    const h = o.header;
    if (o.keep_empty_value !== undefined || h.value !== undefined) return undefined;
    if (typeof h.key !== 'string' || !(h.raw_value instanceof Uint8Array)) return undefined;
    let action = -1;
    if (o.append_action !== undefined) {
      const n = typeof o.append_action === 'string' ? APPEND_ACTIONS[o.append_action] : undefined;
      if (n === undefined) return undefined;
      action = n;
    }
    addSetHeader(out, h.key, h.raw_value, action);
  }
  for (const k of parts.removeHeaders) {
    if (typeof k !== 'string') return undefined;
    addRemoveHeader(out, k);
  }
  out.commonSize = (out.mutation ? delimited(out.mutationSize) : 0) + 2;
  const namespaces = Object.keys(parts.metadata);
  if (namespaces.length > 0) {
    out.metadata = [];
    for (const ns of namespaces) {
      const inner = parts.metadata[ns];
      if (typeof inner !== 'object' || inner === null || Array.isArray(inner)) return undefined;
      const list: MetadataField[] = [];
      for (const key of Object.keys(inner)) {
        const value = (inner as Record<string, unknown>)[key];
        if (typeof value !== 'string') return undefined;
        list.push(metadataField(key, value));
      }
      addNamespace(out, ns, list);
    }
  }
  return out;
}

/** Own keys of `o` whose value the stock codec would write, all among `allowed`. */
function onlyFields(o: Record<string, unknown>, allowed: readonly string[]): boolean {
  for (const k in o) if (o[k] !== undefined && o[k] !== null && !allowed.includes(k)) return false;
  return true;
}

function routedHeaders(msg: ProcessingResponse): RoutedHeaders | undefined {
  const top = msg as Record<string, unknown>;
  if (!msg.request_headers || !onlyFields(top, ['request_headers', 'dynamic_metadata'])) return undefined;
  const phase = msg.request_headers as Record<string, unknown>;
  if (!onlyField(phase, 'response')) return undefined;
  const common = phase.response as Record<string, unknown>;
  if (!onlyFields(common, ['header_mutation', 'clear_route_cache'])) return undefined;
  const crc = common.clear_route_cache;
  if (crc !== undefined && crc !== null && typeof crc !== 'boolean') return undefined;
  const out: RoutedHeaders = {
    setHeaders: [],
    removeHeaders: [],
    mutation: false,
    mutationSize: 0,
    clearRouteCache: typeof crc === 'boolean' ? crc : undefined,
    commonSize: 0,
    metadata: undefined,
    metadataSize: 0,
  };
  const hm = common.header_mutation as Record<string, unknown> | undefined | null;
  if (hm !== undefined && hm !== null) {
    if (typeof hm !== 'object' || !onlyFields(hm, ['set_headers', 'remove_headers'])) return undefined;
    out.mutation = true;
    const set = hm.set_headers;
    if (set !== undefined && set !== null) {
      if (!Array.isArray(set)) return undefined;
      for (const o of set as Array<Record<string, unknown>>) {
        if (typeof o !== 'object' || o === null || !onlyFields(o, ['header', 'append_action']))
          return undefined;
        const h = o.header as Record<string, unknown> | undefined;
        if (!h || typeof h !== 'object' || !onlyFields(h, ['key', 'raw_value'])) return undefined;
        if (typeof h.key !== 'string' || !(h.raw_value instanceof Uint8Array)) return undefined;
        const a = o.append_action;
        let action = -1;
        if (typeof a === 'string') {
          const n = APPEND_ACTIONS[a];
          if (n === undefined) return undefined;
          action = n;
        } else if (a !== undefined && a !== null) return undefined;
        addSetHeader(out, h.key, h.raw_value, action);
      }
    }
    const remove = hm.remove_headers;
    if (remove !== undefined && remove !== null) {
      if (!Array.isArray(remove)) return undefined;
      for (const k of remove as unknown[]) {
        if (typeof k !== 'string') return undefined;
        addRemoveHeader(out, k);
      }
    }
  }
  out.commonSize =
    (out.mutation ? delimited(out.mutationSize) : 0) + (out.clearRouteCache !== undefined ? 2 : 0);
  const md = msg.dynamic_metadata as Record<string, unknown> | undefined | null;
  if (md !== undefined && md !== null) {
    // Struct{fields: namespace -> Value{struct_value: Struct{fields: key -> Value{string_value}}}} only.
    if (typeof md !== 'object' || !onlyFields(md, ['fields'])) return undefined;
    const fields = (md.fields ?? {}) as Record<string, Record<string, unknown>>;
    if (typeof fields !== 'object') return undefined;
    out.metadata = [];
    for (const ns of Object.keys(fields)) {
      const v = fields[ns]!;
      if (typeof v !== 'object' || v === null || !onlyFields(v, ['structValue'])) return undefined;
      const st = v.structValue as Record<string, unknown> | undefined;
      if (!st || typeof st !== 'object' || !onlyFields(st, ['fields'])) return undefined;
      const inner = (st.fields ?? {}) as Record<string, Record<string, unknown>>;
      if (typeof inner !== 'object') return undefined;
      const list: MetadataField[] = [];
      for (const key of Object.keys(inner)) {
        const iv = inner[key]!;
        if (typeof iv !== 'object' || iv === null || !onlyFields(iv, ['stringValue'])) return undefined;
        if (typeof iv.stringValue !== 'string') return undefined;
        list.push(metadataField(key, iv.stringValue));
      }
      addNamespace(out, ns, list);
    }
  }
  return out;
}

class Out {
  o = 0;
  constructor(readonly b: Buffer) {}

  tagLen(tag: number, n: number): void {
    this.b[this.o++] = tag;
    this.o = writeVarint(this.b, this.o, n);
  }

  str(tag: number, s: string, bytes: number): void {
    this.tagLen(tag, bytes);
    if (bytes === s.length && bytes <= SHORT_ASCII) {
      // ASCII (utf8Length found no other character): its UTF-8 is its char codes.
      const b = this.b;
      let o = this.o;
      for (let i = 0; i < bytes; i++) b[o++] = s.charCodeAt(i);
      this.o = o;
    } else this.o += this.b.write(s, this.o, bytes, 'utf8');
  }

  raw(tag: number, v: Uint8Array): void {
    this.tagLen(tag, v.length);
    this.b.set(v, this.o);
    this.o += v.length;
  }

  varintField(tag: number, v: number): void {
    this.b[this.o++] = tag;
    this.o = writeVarint(this.b, this.o, v);
  }
}

function encodeRoutedHeaders(r: RoutedHeaders): Buffer {
  const phaseSize = delimited(r.commonSize);
  const total = delimited(phaseSize) + (r.metadata ? delimited(r.metadataSize) : 0);
  if (scratch.length < total)
    scratch = Buffer.allocUnsafe(Math.min(SCRATCH_MAX_BYTES, Math.max(total, 4096)));
  const w = new Out(total <= scratch.length ? scratch : Buffer.allocUnsafe(total));
  w.tagLen(0x0a, phaseSize); // ProcessingResponse.request_headers (1)
  w.tagLen(0x0a, r.commonSize); // HeadersResponse.response (1)
  if (r.mutation) {
    w.tagLen(0x12, r.mutationSize); // CommonResponse.header_mutation (2)
    for (const h of r.setHeaders) {
      w.tagLen(0x0a, h.size); // HeaderMutation.set_headers (1)
      w.tagLen(0x0a, h.valueSize); // HeaderValueOption.header (1)
      w.str(0x0a, h.key, h.keyBytes); // HeaderValue.key (1)
      w.raw(0x1a, h.raw); // HeaderValue.raw_value (3)
      if (h.action >= 0) w.varintField(0x18, h.action); // HeaderValueOption.append_action (3)
    }
    for (const k of r.removeHeaders) w.str(0x12, k.key, k.bytes); // HeaderMutation.remove_headers (2)
  }
  if (r.clearRouteCache !== undefined) w.varintField(0x28, r.clearRouteCache ? 1 : 0); // clear_route_cache (5)
  if (r.metadata) {
    w.tagLen(0x42, r.metadataSize); // ProcessingResponse.dynamic_metadata (8): Struct
    for (const ns of r.metadata) {
      w.tagLen(0x0a, ns.size); // Struct.fields (1) entry
      w.str(0x0a, ns.key, ns.keyBytes); // entry key (1)
      w.tagLen(0x12, ns.valueSize); // entry value (2): Value
      w.tagLen(0x2a, ns.structSize); // Value.struct_value (5)
      for (const f of ns.fields) {
        w.tagLen(0x0a, f.size);
        w.str(0x0a, f.key, f.keyBytes);
        w.tagLen(0x12, f.valueSize);
        w.str(0x1a, f.value, f.valueBytes); // Value.string_value (3)
      }
    }
  }
  return w.b.subarray(0, w.o);
}

interface StreamedSizes {
  tag: number;
  body: Uint8Array | undefined;
  eos: boolean | undefined;
  inner: number;
  mutation: number;
  common: number;
  phase: number;
  total: number;
}

function streamedSizes(msg: ProcessingResponse): StreamedSizes | undefined {
  const s = streamedBody(msg);
  if (!s) return undefined;
  const bodyLen = s.body ? s.body.length : 0;
  const inner = (s.body ? 1 + varintBytes(bodyLen) + bodyLen : 0) + (s.eos !== undefined ? 2 : 0);
  const mutation = 1 + varintBytes(inner) + inner;
  const common = 1 + varintBytes(mutation) + mutation;
  const phase = 1 + varintBytes(common) + common;
  const total = 1 + varintBytes(phase) + phase;
  return { tag: s.tag, body: s.body, eos: s.eos, inner, mutation, common, phase, total };
}

/** The bytes of a streamed body reply before its body bytes (at most 26). */
function writeStreamedHead(out: Buffer, o: number, z: StreamedSizes): number {
  out[o++] = z.tag;
  o = writeVarint(out, o, z.phase);
  out[o++] = 0x0a; // BodyResponse.response (1)
  o = writeVarint(out, o, z.common);
  out[o++] = 0x1a; // CommonResponse.body_mutation (3)
  o = writeVarint(out, o, z.mutation);
  out[o++] = 0x1a; // BodyMutation.streamed_response (3)
  o = writeVarint(out, o, z.inner);
  if (z.body) {
    out[o++] = 0x0a; // StreamedBodyResponse.body (1)
    o = writeVarint(out, o, z.body.length);
  }
  return o;
}

/** The bytes after the body: StreamedBodyResponse.end_of_stream (2), when set. */
function writeStreamedTail(out: Buffer, o: number, z: StreamedSizes): number {
  if (z.eos !== undefined) {
    out[o++] = 0x10;
    out[o++] = z.eos ? 1 : 0;
  }
  return o;
}

/** Replies that never change (replies.ts constantReply): their bytes, encoded by the stock codec on first use. */
const constants = new Map<object, Buffer | undefined>();

function deepFreeze(o: object): void {
  for (const v of Object.values(o)) if (typeof v === 'object' && v !== null) deepFreeze(v as object);
  Object.freeze(o);
}

/**
 * Marks `msg` as a reply sent unchanged many times (the "continue" and
 * trailers replies, one or two per request): frozen, so it cannot change,
 * and serialized once, by the stock codec, on its first use; the serializer
 * returns those bytes from then on (both transports copy what serialize
 * returns before sending it).
 */
export function constantReply<T extends object>(msg: T): T {
  deepFreeze(msg);
  constants.set(msg, undefined);
  return msg;
}

/** The EPP's reply serializer: streamed body chunks by hand, everything else by `stock`. */
export function replySerializer(stock: Serialize): Serialize {
  return (message) => {
    const msg = message as ProcessingResponse;
    const z = streamedSizes(msg);
    if (!z) {
      if (constants.has(msg)) {
        let bytes = constants.get(msg);
        if (!bytes) constants.set(msg, (bytes = Buffer.from(stock(msg))));
        return bytes;
      }
      const form = msg instanceof RoutedHeadersMessage ? RoutedHeadersMessage.form(msg) : undefined;
      if (form) return encodeRoutedHeaders(form);
      const routed = routedHeaders(msg);
      return routed ? encodeRoutedHeaders(routed) : stock(msg);
    }
    let out: Buffer;
    if (z.total <= SCRATCH_MAX_BYTES) {
      if (scratch.length < z.total) scratch = Buffer.allocUnsafe(Math.min(SCRATCH_MAX_BYTES, z.total * 2));
      out = scratch;
    } else out = Buffer.allocUnsafe(z.total);
    let o = writeStreamedHead(out, 0, z);
    if (z.body) {
      out.set(z.body, o);
      o += z.body.length;
    }
    o = writeStreamedTail(out, o, z);
    return out.subarray(0, o);
  };
}

/**
 * A streamed body reply of at least `minBody` body bytes as three pieces to
 * write in order, without copying the body: `head` (with `reserve` bytes left
 * free at its start, for a transport's own framing), the body itself, and
 * `tail` (possibly empty). Their bytes are replySerializer's, byte for byte.
 * Undefined for any other reply, or a smaller body (serialize it whole).
 */
export function splitStreamedBody(
  message: object,
  reserve: number,
  minBody: number,
): { head: Buffer; body: Uint8Array; tail: Buffer; total: number } | undefined {
  const msg = message as ProcessingResponse;
  if (!msg.request_body && !msg.response_body) return undefined;
  const z = streamedSizes(msg);
  if (!z || !z.body || z.body.length < minBody) return undefined;
  const head = Buffer.allocUnsafe(reserve + 32);
  const headEnd = writeStreamedHead(head, reserve, z);
  const tail = Buffer.allocUnsafe(z.eos !== undefined ? 2 : 0);
  writeStreamedTail(tail, 0, z);
  return { head: head.subarray(0, headEnd), body: z.body, tail, total: z.total };
}
