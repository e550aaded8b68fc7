// Pins the wire bytes of every ext_proc message the EPP reads or writes.
// Each expected hex string was worked out by hand from the protobuf encoding
// rules (tag = field_number << 3 | wire_type; LEN = 2, VARINT = 0) and the
// field numbers of envoyproxy/data-plane-api; a field renumbered in
// proto/ breaks this test.
import { describe, expect, test } from 'vitest';
import {
  fromStruct,
  setHeader,
  statusCodeNumber,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../../src/extproc/messages.js';
import { processCodec } from '../../../src/extproc/proto.js';
import {
  immediateReply,
  routedHeadersReply,
  streamedBodyReplies,
  BODY_CHUNK_BYTES,
} from '../../../src/extproc/replies.js';

const codec = processCodec();
const hex = (s: string) => s.replace(/\s+/g, '');
const encReq = (m: ProcessingRequest) => codec.encodeRequest(m).toString('hex');
const encRes = (m: ProcessingResponse) => codec.encodeResponse(m).toString('hex');

describe('ProcessingRequest (Envoy -> EPP)', () => {
  test('request_headers (2) with HeaderMap/HeaderValue.raw_value (3) and protocol_config (11)', () => {
    // HeaderValue{key(1)=":path", raw_value(3)="/v1"}           0a05 3a70617468 1a03 2f7631      (12 B)
    // HeaderMap{headers(1)}                                      0a0c ...                          (14 B)
    // HttpHeaders{headers(1), end_of_stream(3)=true}             0a0e ... 1801                     (18 B)
    // ProcessingRequest.request_headers = field 2 -> 0x12; protocol_config = field 11 -> 0x5a
    // ProtocolConfiguration{request_body_mode(1)=4, response_body_mode(2)=4} (FULL_DUPLEX_STREAMED = 4)
    const expected = hex('1212 0a0e 0a0c 0a05 3a70617468 1a03 2f7631 1801 5a04 0804 1004');
    const msg: ProcessingRequest = {
      request_headers: {
        headers: { headers: [{ key: ':path', raw_value: Buffer.from('/v1') }] },
        end_of_stream: true,
      },
      protocol_config: {
        request_body_mode: 'FULL_DUPLEX_STREAMED',
        response_body_mode: 'FULL_DUPLEX_STREAMED',
      },
    };
    expect(encReq(msg)).toBe(expected);
    const back = codec.decodeRequest(Buffer.from(expected, 'hex')) as ProcessingRequest;
    expect(back.request).toBe('request_headers');
    expect(back.request_headers?.headers?.headers?.[0]?.raw_value?.toString()).toBe('/v1');
    expect(back.protocol_config?.request_body_mode).toBe('FULL_DUPLEX_STREAMED');
  });

  test('request_body (4) HttpBody and metadata_context (8) Metadata.filter_metadata with a Struct', () => {
    // HttpBody{body(1)="{}", end_of_stream(2)=true}              0a02 7b7d 1001                    (6 B) -> 2206 ...
    // Value{string_value(3)="v"}                                 1a01 76                           (3 B)
    // Struct.fields entry {key(1)="k", value(2)}                 0a01 6b 1203 1a0176               (8 B)
    // Struct                                                     0a08 ...                          (10 B)
    // filter_metadata entry {key="envoy.lb", value=Struct}       0a08 656e766f792e6c62 120a ...    (22 B)
    // Metadata                                                   0a16 ...                          (24 B) -> field 8: 4218
    const expected = hex(
      '2206 0a02 7b7d 1001 4218 0a16 0a08 656e766f792e6c62 120a 0a08 0a01 6b 1203 1a01 76',
    );
    const msg: ProcessingRequest = {
      request_body: { body: Buffer.from('{}'), end_of_stream: true },
      metadata_context: { filter_metadata: { 'envoy.lb': { fields: { k: { stringValue: 'v' } } } } },
    };
    expect(encReq(msg)).toBe(expected);
    const back = codec.decodeRequest(Buffer.from(expected, 'hex')) as ProcessingRequest;
    expect(back.request).toBe('request_body');
    expect(back.request_body?.end_of_stream).toBe(true);
    expect(fromStruct(back.metadata_context?.filter_metadata?.['envoy.lb'])).toEqual({ k: 'v' });
  });

  test('response_headers (3), response_body (5), response_trailers (7), request_trailers (6), observability_mode (10)', () => {
    // response_headers: HttpHeaders{headers: [{key "a", raw "b"}]}: HeaderValue 0a0161 1a0162 (6) -> map 0a06 (8) -> 0a08 (10) -> 1a0a
    expect(
      encReq({ response_headers: { headers: { headers: [{ key: 'a', raw_value: Buffer.from('b') }] } } }),
    ).toBe(hex('1a0a 0a08 0a06 0a0161 1a0162'));
    // response_body: HttpBody{body="x", end_of_stream=false}: an explicitly set false is still written (1000)
    expect(encReq({ response_body: { body: Buffer.from('x'), end_of_stream: false } })).toBe(
      hex('2a05 0a0178 1000'),
    );
    // response_trailers: HttpTrailers{trailers(1)=HeaderMap}
    expect(
      encReq({ response_trailers: { trailers: { headers: [{ key: 'a', raw_value: Buffer.from('b') }] } } }),
    ).toBe(hex('3a0a 0a08 0a06 0a0161 1a0162'));
    // request_trailers = field 6 (0x32), empty; observability_mode = field 10 varint (0x50)
    expect(encReq({ request_trailers: {}, observability_mode: true })).toBe(hex('3200 5001'));
    const back = codec.decodeRequest(Buffer.from('5001 3200'.replace(' ', ''), 'hex')) as ProcessingRequest;
    expect(back.request).toBe('request_trailers');
    expect(back.observability_mode).toBe(true);
  });

  test('HeaderValue.value (2) is still readable (older senders)', () => {
    // HeaderValue{key="a", value(2)="b"}: 0a0161 120162 (6) -> HeaderMap 0a06 -> HttpHeaders 0a08 -> field 2: 120a
    const back = codec.decodeRequest(
      Buffer.from(hex('120a 0a08 0a06 0a0161 120162'), 'hex'),
    ) as ProcessingRequest;
    expect(back.request_headers?.headers?.headers?.[0]).toMatchObject({ key: 'a', value: 'b' });
  });
});

describe('ProcessingResponse (EPP -> Envoy)', () => {
  test('request_headers (1): CommonResponse header_mutation + clear_route_cache, dynamic_metadata (8) envoy.lb', () => {
    // HeaderValue{key="d", raw_value="1.2.3.4:80"}               0a0164 1a0a 312e322e332e343a3830  (15 B)
    // HeaderValueOption{header(1), append_action(3)=OVERWRITE_IF_EXISTS_OR_ADD(2)}  0a0f ... 1802   (19 B)
    // HeaderMutation{set_headers(1), remove_headers(2)=["x"]}    0a13 ... 120178                   (24 B)
    // CommonResponse{header_mutation(2), clear_route_cache(5)}   1218 ... 2801                     (28 B)
    // HeadersResponse{response(1)}                               0a1c ...                          (30 B) -> 0a1e
    // dynamic_metadata Struct{"envoy.lb": Value{struct_value(5)=Struct{"d": Value{string_value="1.2.3.4:80"}}}}
    //   inner Value 1a0a..(12) -> entry 0a0164 120c..(17) -> Struct 0a11..(19) -> Value 2a13..(21)
    //   -> entry 0a08 656e766f792e6c62 1215..(33) -> Struct 0a21..(35) -> field 8: 4223
    const expected = hex(
      '0a1e 0a1c 1218 0a13 0a0f 0a0164 1a0a 312e322e332e343a3830 1802 120178 2801' +
        '4223 0a21 0a08 656e766f792e6c62 1215 2a13 0a11 0a0164 120c 1a0a 312e322e332e343a3830',
    );
    const built = routedHeadersReply({
      setHeaders: [setHeader('d', '1.2.3.4:80')],
      removeHeaders: ['x'],
      metadata: { 'envoy.lb': { d: '1.2.3.4:80' } },
    });
    expect(encRes(built)).toBe(expected);
    const back = codec.decodeResponse(Buffer.from(expected, 'hex')) as ProcessingResponse;
    expect(back.response).toBe('request_headers');
    expect(back.request_headers?.response?.clear_route_cache).toBe(true);
    expect(fromStruct(back.dynamic_metadata)).toEqual({ 'envoy.lb': { d: '1.2.3.4:80' } });
  });

  test('request_body (3): BodyMutation.streamed_response (3) StreamedBodyResponse{body, end_of_stream}', () => {
    // StreamedBodyResponse 0a02 6162 1001 (6) -> BodyMutation 1a06 (8) -> CommonResponse.body_mutation(3) 1a08 (10)
    // -> BodyResponse 0a0a (12) -> ProcessingResponse.request_body = field 3: 1a0c
    const expected = hex('1a0c 0a0a 1a08 1a06 0a02 6162 1001');
    const [only, ...rest] = streamedBodyReplies('request_body', Buffer.from('ab'), true);
    expect(rest).toHaveLength(0);
    expect(encRes(only!)).toBe(expected);
    // response_body = field 4 (0x22), same inner bytes
    expect(encRes(streamedBodyReplies('response_body', Buffer.from('ab'), true)[0]!)).toBe(
      hex('220c 0a0a 1a08 1a06 0a02 6162 1001'),
    );
  });

  test('immediate_response (7): HttpStatus.code (1), headers (2), body (3), details (5)', () => {
    // HttpStatus{code=503}: 08 f703 -> 0a03 08f703 (5 B)
    // HeaderValue{"content-type","application/json"}: 0a0c <12> 1a10 <16> (32 B) -> HVO 0a20 .. 1802 (36) -> HeaderMutation 0a24 (38) -> 1226 (40)
    // body 1a02 7b7d (4), details 2a01 78 (3): ImmediateResponse = 52 B -> field 7: 3a34
    const expected = hex(
      '3a34 0a03 08f703 1226 0a24 0a20 0a0c 636f6e74656e742d74797065 1a10 6170706c69636174696f6e2f6a736f6e 1802 1a02 7b7d 2a01 78',
    );
    const msg: ProcessingResponse = {
      immediate_response: {
        status: { code: 503 },
        headers: { set_headers: [setHeader('content-type', 'application/json')] },
        body: Buffer.from('{}'),
        details: 'x',
      },
    };
    expect(encRes(msg)).toBe(expected);
    const back = codec.decodeResponse(Buffer.from(expected, 'hex')) as ProcessingResponse;
    expect(statusCodeNumber(back.immediate_response?.status?.code)).toBe(503);
    // The builder adds content-type and x-request-id, status as given.
    const built = codec.decodeResponse(
      codec.encodeResponse(immediateReply(429, '{}', 'rid', 'd')),
    ) as ProcessingResponse;
    expect(statusCodeNumber(built.immediate_response?.status?.code)).toBe(429);
    expect(built.immediate_response?.headers?.set_headers?.map((h) => h.header.key)).toEqual([
      'content-type',
      'x-request-id',
    ]);
  });

  test('continue replies and trailers replies', () => {
    // response_headers = field 2 with HeadersResponse{response: CommonResponse{}}: 1202 0a00
    expect(encRes({ response_headers: { response: {} } })).toBe(hex('1202 0a00'));
    // request_headers = field 1: 0a02 0a00; response_body = field 4: 2202 0a00
    expect(encRes({ request_headers: { response: {} } })).toBe(hex('0a02 0a00'));
    expect(encRes({ response_body: { response: {} } })).toBe(hex('2202 0a00'));
    // request_trailers = field 5 (0x2a), response_trailers = field 6 (0x32): empty TrailersResponse
    expect(encRes({ request_trailers: {} })).toBe(hex('2a00'));
    expect(encRes({ response_trailers: {} })).toBe(hex('3200'));
  });

  test('bodies are cut at 62,000 bytes with end_of_stream on the last chunk only', () => {
    const body = Buffer.alloc(BODY_CHUNK_BYTES * 2 + 5, 0x61);
    const parts = streamedBodyReplies('request_body', body, true);
    const sizes = parts.map((p) => p.request_body!.response!.body_mutation!.streamed_response!.body!.length);
    const eos = parts.map((p) => p.request_body!.response!.body_mutation!.streamed_response!.end_of_stream);
    expect(sizes).toEqual([62_000, 62_000, 5]);
    expect(eos).toEqual([false, false, true]);
    // An empty body is one empty chunk with end_of_stream; the explicitly set
    // empty body is still written: StreamedBodyResponse 0a00 1001 (4) -> 1a04 (6) -> 1a06 (8) -> 0a08 (10) -> 1a0a
    const empty = streamedBodyReplies('request_body', Buffer.alloc(0), true);
    expect(empty).toHaveLength(1);
    expect(encRes(empty[0]!)).toBe(hex('1a0a 0a08 1a06 1a04 0a00 1001'));
  });
});
