// The EPP's hand-written serializer for streamed body chunks must give the
// stock codec's bytes for every message, and hand anything else to it.
import { describe, expect, test } from 'vitest';
import type { ProcessingResponse } from '../../../src/extproc/messages.js';
import { processCodec } from '../../../src/extproc/proto.js';
import {
  CONTINUE_REQUEST_BODY,
  CONTINUE_REQUEST_HEADERS,
  CONTINUE_RESPONSE_BODY,
  CONTINUE_RESPONSE_HEADERS,
  REQUEST_TRAILERS_REPLY,
  RESPONSE_HEADERS_DROP_LENGTH,
  RESPONSE_TRAILERS_REPLY,
  routedHeadersReply,
  streamedBodyReplies,
  type RoutingReply,
} from '../../../src/extproc/replies.js';
import { setHeader } from '../../../src/extproc/messages.js';
import { replySerializer, splitStreamedBody } from '../../../src/extproc/reply-encoder.js';

const codec = processCodec();
const same = (m: ProcessingResponse) =>
  expect(codec.encodeResponse(m).toString('hex')).toBe(codec.stockEncodeResponse(m).toString('hex'));

describe('reply serializer', () => {
  test('streamed body chunks of every length class encode as the stock codec does', () => {
    // Lengths around each varint boundary of the body and of the enclosing messages.
    for (const n of [
      0, 1, 100, 117, 118, 127, 128, 16_370, 16_383, 16_384, 62_000, 65_536, 2_097_140, 2_097_152,
    ])
      for (const eos of [true, false])
        for (const phase of ['request_body', 'response_body'] as const) {
          const body = Buffer.alloc(n, n % 251);
          for (const m of streamedBodyReplies(phase, body, eos)) same(m);
        }
  });

  test("split streamed bodies (the lean transport's zero-copy write): head + body + tail are the stock bytes", () => {
    for (const n of [4096, 16_383, 16_384, 62_000, 2_097_152])
      for (const eos of [true, false, undefined])
        for (const phase of ['request_body', 'response_body'] as const) {
          const body = Buffer.alloc(n, n % 251);
          const m: ProcessingResponse = {
            [phase]: {
              response: {
                body_mutation: {
                  streamed_response: eos === undefined ? { body } : { body, end_of_stream: eos },
                },
              },
            },
          };
          const parts = splitStreamedBody(m, 5, 4096)!;
          expect(parts.body).toBe(body);
          const joined = Buffer.concat([parts.head.subarray(5), parts.body, parts.tail]);
          expect(joined.length).toBe(parts.total);
          expect(joined.equals(codec.stockEncodeResponse(m))).toBe(true);
        }
    // Small bodies, and anything but a streamed body, are serialized whole.
    expect(
      splitStreamedBody(streamedBodyReplies('request_body', Buffer.alloc(100), true)[0]!, 5, 4096),
    ).toBeUndefined();
    expect(splitStreamedBody({ request_headers: { response: {} } }, 5, 0)).toBeUndefined();
  });

  test('end_of_stream absent, body absent, a Uint8Array body', () => {
    same({
      request_body: { response: { body_mutation: { streamed_response: { body: Buffer.from('ab') } } } },
    });
    same({ response_body: { response: { body_mutation: { streamed_response: { end_of_stream: true } } } } });
    same({ response_body: { response: { body_mutation: { streamed_response: {} } } } });
    same({
      request_body: {
        response: { body_mutation: { streamed_response: { body: new Uint8Array([1, 2, 3]) as Buffer } } },
      },
    });
  });

  test('routed header replies encode as the stock codec does', () => {
    const dest = '10.0.0.1:8000,10.0.0.2:8000';
    const variants: RoutingReply[] = [
      { setHeaders: [], removeHeaders: [], metadata: {} },
      {
        setHeaders: [
          setHeader('x-gateway-destination-endpoint', dest),
          setHeader('content-length', '220000'),
          setHeader('x-request-id', 'é-'.repeat(100)),
        ],
        removeHeaders: ['x-openfuyao-prefill-pod-address-port', 'x-decode'],
        metadata: { 'envoy.lb': { 'x-gateway-destination-endpoint': dest } },
      },
      {
        setHeaders: [
          {
            header: { key: 'k', raw_value: Buffer.alloc(300, 0x41) },
            append_action: 'APPEND_IF_EXISTS_OR_ADD' as const,
          },
        ],
        removeHeaders: [],
        metadata: { a: { x: '1', y: '' }, 'b.ns': {} },
      },
    ];
    for (const v of variants) same(routedHeadersReply(v));
    same({ request_headers: { response: { clear_route_cache: false } } });
    same({ request_headers: { response: { header_mutation: {} } }, dynamic_metadata: {} });
    same({ request_headers: { response: {} }, dynamic_metadata: { fields: { n: { structValue: {} } } } });
  });

  test('any other shape goes to the stock codec unchanged', () => {
    const chunk = { body: Buffer.from('xy'), end_of_stream: true };
    const others: ProcessingResponse[] = [
      routedHeadersReply({
        setHeaders: [setHeader('x-gateway-destination-endpoint', '1.2.3.4:80')],
        removeHeaders: [],
        metadata: { 'envoy.lb': { 'x-gateway-destination-endpoint': '1.2.3.4:80' } },
      }),
      { request_body: { response: {} } },
      { request_body: { response: { body_mutation: { body: Buffer.from('z') } } } },
      { request_body: { response: { body_mutation: { streamed_response: chunk } } }, request_drain: true },
      {
        request_body: {
          response: { body_mutation: { streamed_response: chunk }, clear_route_cache: true },
        },
      },
      {
        request_body: {
          response: {
            body_mutation: { streamed_response: { ...chunk, end_of_stream_without_message: true } },
          },
        },
      },
      { response_trailers: {} },
      {
        request_headers: {
          response: { header_mutation: { set_headers: [{ header: { key: 'k', value: 'v' } }] } },
        },
      },
      { request_headers: { response: { status: 'CONTINUE_AND_REPLACE' } } },
      routedHeadersReply({ setHeaders: [], removeHeaders: [], metadata: { ns: { n: 3, b: true, s: 'x' } } }),
      routedHeadersReply({ setHeaders: [], removeHeaders: [], metadata: { ns: { deep: { x: 'y' } } } }),
      { response_headers: { response: { header_mutation: { remove_headers: ['content-length'] } } } },
    ];
    for (const m of others) same(m);
  });

  test("the hand-written paths are the ones taken for the EPP's routed and body replies", () => {
    let stockCalls = 0;
    const serialize = replySerializer((m) => {
      stockCalls++;
      return codec.stockEncodeResponse(m);
    });
    serialize(streamedBodyReplies('request_body', Buffer.from('ab'), true)[0]!);
    serialize(
      routedHeadersReply({
        setHeaders: [setHeader('x-gateway-destination-endpoint', '1.2.3.4:80')],
        removeHeaders: ['x-decode'],
        metadata: { 'envoy.lb': { 'x-gateway-destination-endpoint': '1.2.3.4:80' } },
      }),
    );
    expect(stockCalls).toBe(0);
    serialize({ response_headers: { response: {} } });
    expect(stockCalls).toBe(1);
  });

  test("a routed reply's encoder form, made as it is built, gives the stock bytes; a changed reply is read back", () => {
    const parts = (dest: string, id: string): RoutingReply => ({
      setHeaders: [
        setHeader('x-gateway-destination-endpoint', dest),
        setHeader('content-length', '220000'),
        setHeader('x-request-id', id),
        { header: { key: 'x-a', raw_value: Buffer.from('v') }, append_action: 'ADD_IF_ABSENT' },
      ],
      removeHeaders: ['x-prefiller-host-port', 'x-decoder-host-port'],
      metadata: { 'envoy.lb': { 'x-gateway-destination-endpoint': dest }, other: { k: 'é ü' } },
    });
    const built = routedHeadersReply(parts('10.0.0.1:8000', 'id-1'));
    same(built);
    // The form is private: the reply has the plain message's fields and nothing else.
    expect(Object.keys(built).sort()).toEqual(['dynamic_metadata', 'request_headers']);
    // Long and non-ASCII strings take the native length and write.
    const long = 'x'.repeat(300);
    same(routedHeadersReply({ ...parts(long, 'ïd-ü'), removeHeaders: [long, 'ß'] }));
    // Replaced after building: the serializer reads the message, not the stale form.
    const changed = routedHeadersReply(parts('10.0.0.1:8000', 'id-2'));
    const other = routedHeadersReply(parts('10.9.9.9:9', 'id-3'));
    changed.request_headers = other.request_headers;
    changed.dynamic_metadata = other.dynamic_metadata;
    same(changed);
    expect(codec.encodeResponse(changed).equals(codec.encodeResponse(other))).toBe(true);
    const noMetadata = routedHeadersReply(parts('10.0.0.1:8000', 'id-4'));
    delete noMetadata.dynamic_metadata;
    same(noMetadata);
    // Parts outside the hand shape are read back as before (here: a header with `value`).
    same(
      routedHeadersReply({
        setHeaders: [{ header: { key: 'k', value: 'v' } }],
        removeHeaders: [],
        metadata: {},
      }),
    );
  });

  test('the constant replies are frozen and encode as the stock codec does, every time', () => {
    for (const m of [
      CONTINUE_REQUEST_HEADERS,
      CONTINUE_REQUEST_BODY,
      CONTINUE_RESPONSE_HEADERS,
      CONTINUE_RESPONSE_BODY,
      RESPONSE_HEADERS_DROP_LENGTH,
      REQUEST_TRAILERS_REPLY,
      RESPONSE_TRAILERS_REPLY,
    ]) {
      expect(Object.isFrozen(m)).toBe(true);
      expect(Object.isFrozen(Object.values(m)[0])).toBe(true);
      same(m);
      same(m);
    }
    expect(() => {
      (
        RESPONSE_HEADERS_DROP_LENGTH.response_headers!.response!.header_mutation!.remove_headers as string[]
      ).push('x');
    }).toThrow(TypeError);
    // An equal message that is not the constant is encoded as any other.
    let stockCalls = 0;
    const serialize = replySerializer((m) => {
      stockCalls++;
      return codec.stockEncodeResponse(m);
    });
    // (Encoded above already: the constant's bytes are kept from then on.)
    serialize(CONTINUE_RESPONSE_BODY);
    serialize(CONTINUE_RESPONSE_BODY);
    expect(stockCalls).toBe(0);
    serialize({ response_body: { response: {} } });
    expect(stockCalls).toBe(1);
  });

  test('the bytes returned are the message itself, decodable after the next encode', () => {
    const a = codec.encodeResponse(streamedBodyReplies('request_body', Buffer.from('first'), false)[0]!);
    codec.encodeResponse(streamedBodyReplies('request_body', Buffer.from('second'), true)[0]!);
    const back = codec.decodeResponse(a) as ProcessingResponse;
    expect(back.request_body?.response?.body_mutation?.streamed_response?.body?.toString()).toBe('first');
  });
});
