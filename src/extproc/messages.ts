// TypeScript shapes of the ext_proc messages as src/extproc/proto.ts loads
// them (snake_case fields, enum names, Buffers for bytes, `request` /
// `response` / `mutation` naming the set oneof member), plus the small
// conversions both sides need: header maps, google.protobuf.Struct, status codes.
import { extProcPackageDefinition } from './proto.js';

export interface HeaderValue {
  key: string;
  value?: string;
  raw_value?: Buffer;
}

export interface HeaderMap {
  headers?: HeaderValue[];
}

export type HeaderAppendAction =
  'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

export interface HeaderValueOption {
  header: HeaderValue;
  append_action?: HeaderAppendAction;
  keep_empty_value?: boolean;
}

export interface HeaderMutation {
  set_headers?: HeaderValueOption[];
  remove_headers?: string[];
}

export interface HttpHeaders {
  headers?: HeaderMap;
  end_of_stream?: boolean;
}

export interface HttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
  end_of_stream_without_message?: boolean;
  grpc_message_compressed?: boolean;
}

export interface HttpTrailers {
  trailers?: HeaderMap;
}

/**
 * google.protobuf.Value. protobufjs supplies the well-known types from its
 * bundled definitions, whose field names are camelCase even with keepCase.
 */
export interface ProtoValue {
  kind?: string;
  nullValue?: 'NULL_VALUE' | 0;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: ProtoStruct;
  listValue?: { values?: ProtoValue[] };
}

/** google.protobuf.Struct. */
export interface ProtoStruct {
  fields?: Record<string, ProtoValue>;
}

export interface Metadata {
  filter_metadata?: Record<string, ProtoStruct>;
}

export type BodySendMode =
  'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED' | 'GRPC';
export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';

export interface ProtocolConfiguration {
  request_body_mode?: BodySendMode;
  response_body_mode?: BodySendMode;
  send_body_without_waiting_for_header_response?: boolean;
}

export type RequestKind =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers';

export interface ProcessingRequest {
  request?: RequestKind;
  request_headers?: HttpHeaders;
  response_headers?: HttpHeaders;
  request_body?: HttpBody;
  response_body?: HttpBody;
  request_trailers?: HttpTrailers;
  response_trailers?: HttpTrailers;
  metadata_context?: Metadata;
  attributes?: Record<string, ProtoStruct>;
  observability_mode?: boolean;
  protocol_config?: ProtocolConfiguration;
}

const REQUEST_KINDS: readonly RequestKind[] = [
  'request_headers',
  'response_headers',
  'request_body',
  'response_body',
  'request_trailers',
  'response_trailers',
];

/** Which oneof member a request carries (decoded messages name it; hand-built ones may not). */
export function requestKind(msg: ProcessingRequest): RequestKind | undefined {
  if (msg.request) return msg.request;
  for (const k of REQUEST_KINDS) if (msg[k] !== undefined && msg[k] !== null) return k;
  return undefined;
}

export interface StreamedBodyResponse {
  body?: Buffer;
  end_of_stream?: boolean;
  end_of_stream_without_message?: boolean;
  grpc_message_compressed?: boolean;
}

export interface BodyMutation {
  mutation?: 'body' | 'clear_body' | 'streamed_response';
  body?: Buffer;
  clear_body?: boolean;
  streamed_response?: StreamedBodyResponse;
}

export interface CommonResponse {
  status?: 'CONTINUE' | 'CONTINUE_AND_REPLACE';
  header_mutation?: HeaderMutation;
  body_mutation?: BodyMutation;
  trailers?: HeaderMap;
  clear_route_cache?: boolean;
}

export interface HeadersResponse {
  response?: CommonResponse;
}

export interface BodyResponse {
  response?: CommonResponse;
}

export interface TrailersResponse {
  header_mutation?: HeaderMutation;
}

export interface ImmediateResponse {
  /** Encoded from a number or an envoy.type.v3.StatusCode name; decoded as the name. */
  status?: { code?: number | string };
  headers?: HeaderMutation;
  body?: Buffer;
  grpc_status?: { status?: number };
  details?: string;
}

export interface ProcessingMode {
  request_header_mode?: HeaderSendMode;
  response_header_mode?: HeaderSendMode;
  request_body_mode?: BodySendMode;
  response_body_mode?: BodySendMode;
  request_trailer_mode?: HeaderSendMode;
  response_trailer_mode?: HeaderSendMode;
}

export type ResponseKind =
  | 'request_headers'
  | 'response_headers'
  | 'request_body'
  | 'response_body'
  | 'request_trailers'
  | 'response_trailers'
  | 'immediate_response'
  | 'streamed_immediate_response';

export interface ProcessingResponse {
  response?: ResponseKind;
  request_headers?: HeadersResponse;
  response_headers?: HeadersResponse;
  request_body?: BodyResponse;
  response_body?: BodyResponse;
  request_trailers?: TrailersResponse;
  response_trailers?: TrailersResponse;
  immediate_response?: ImmediateResponse;
  dynamic_metadata?: ProtoStruct;
  mode_override?: ProcessingMode;
  request_drain?: boolean;
}

// ---- header maps ----

/** A header's value: Envoy fills raw_value; older senders use value. */
export function headerValueText(h: HeaderValue): string {
  if (h.raw_value && h.raw_value.length > 0) return h.raw_value.toString('latin1');
  return h.value ?? '';
}

/** Lower-cased key -> value (repeated keys joined with ", " as HTTP allows). */
export function headerRecord(map: HeaderMap | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const list = map?.headers;
  if (!list) return out;
  for (const h of list) {
    const key = h.key.toLowerCase();
    const v = headerValueText(h);
    const prev = out[key];
    out[key] = prev === undefined ? v : `${prev}, ${v}`;
  }
  return out;
}

/**
 * headerRecord(map)[name] (`name` lower-case) without building the record:
 * for a handler that reads a header or two of many.
 */
export function headerText(map: HeaderMap | undefined, name: string): string | undefined {
  const list = map?.headers;
  if (!list) return undefined;
  let out: string | undefined;
  for (const h of list) {
    if (h.key.toLowerCase() !== name) continue;
    const v = headerValueText(h);
    out = out === undefined ? v : `${out}, ${v}`;
  }
  return out;
}

/** A HeaderMap as Envoy sends it (values in raw_value). */
export function toHeaderMap(headers: Iterable<readonly [string, string]>): HeaderMap {
  const list: HeaderValue[] = [];
  for (const [key, value] of headers) list.push({ key, raw_value: Buffer.from(value, 'latin1') });
  return { headers: list };
}

/** One set_headers entry that overwrites (or adds) the header. */
export function setHeader(key: string, value: string): HeaderValueOption {
  return {
    header: { key, raw_value: Buffer.from(value, 'latin1') },
    append_action: 'OVERWRITE_IF_EXISTS_OR_ADD',
  };
}

// ---- google.protobuf.Struct ----

export function toProtoValue(v: unknown): ProtoValue {
  if (v === null || v === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toProtoValue) } };
  if (typeof v === 'object') return { structValue: toStruct(v as Record<string, unknown>) };
  return { stringValue: String(v) };
}

export function toStruct(obj: Record<string, unknown>): ProtoStruct {
  const fields: Record<string, ProtoValue> = {};
  // Keys, not entries: no [key, value] pair allocated per field (the routed reply's metadata, per request).
  for (const k of Object.keys(obj)) fields[k] = toProtoValue(obj[k]);
  return { fields };
}

export function fromProtoValue(v: ProtoValue | undefined): unknown {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.numberValue !== undefined) return v.numberValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.structValue !== undefined) return fromStruct(v.structValue);
  if (v.listValue !== undefined) return (v.listValue.values ?? []).map(fromProtoValue);
  return null;
}

export function fromStruct(s: ProtoStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (!s?.fields) return out;
  for (const [k, v] of Object.entries(s.fields)) out[k] = fromProtoValue(v);
  return out;
}

// ---- envoy.type.v3.StatusCode ----

let statusNumbers: Map<string, number> | undefined;

/** HTTP status number of an ImmediateResponse status as decoded (name or number). */
export function statusCodeNumber(code: number | string | undefined): number {
  if (typeof code === 'number') return code;
  if (code === undefined) return 0;
  if (!statusNumbers) {
    statusNumbers = new Map();
    const def = extProcPackageDefinition()['envoy.type.v3.StatusCode'] as unknown as {
      type: { value: Array<{ name: string; number: number }> };
    };
    for (const v of def.type.value) statusNumbers.set(v.name, v.number);
  }
  return statusNumbers.get(code) ?? (Number(code) || 0);
}
