// The EPP's hand-written ProcessingRequest decoder must give exactly what
// the stock decoder (proto-loader over protobufjs) gives, key order and
// bytes included, or leave the message to it.
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { toHeaderMap } from '../../../src/extproc/messages.js';
import { processCodec } from '../../../src/extproc/proto.js';
import { decodeProcessingRequest } from '../../../src/extproc/request-decoder.js';

const codec = processCodec();

/** A JSON form that keeps key order and shows Buffers as hex, so two objects compare as the same text. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (x && typeof x === 'object' && (x as { type?: string }).type === 'Buffer') {
      return { hex: Buffer.from((x as { data: number[] }).data).toString('hex') };
    }
    return x;
  });
}

function stock(buf: Buffer): { ok: true; value: unknown } | { ok: false } {
  try {
    return { ok: true, value: codec.stockDecodeRequest(buf) };
  } catch {
    return { ok: false };
  }
}

/** The hand decoder took the message and gave the stock decoder's object. */
function sameByHand(buf: Buffer): void {
  const hand = decodeProcessingRequest(buf);
  expect(hand).toBeDefined();
  const s = stock(buf);
  expect(s.ok).toBe(true);
  expect(canonical(hand)).toBe(canonical((s as { value: unknown }).value));
}

/** Either the hand decoder left it to the stock decoder, or both give the same object. */
function agrees(buf: Buffer): void {
  const hand = decodeProcessingRequest(buf);
  if (hand === undefined) return;
  const s = stock(buf);
  expect(s.ok).toBe(true);
  expect(canonical(hand)).toBe(canonical((s as { value: unknown }).value));
}

const MODES = ['NONE', 'STREAMED', 'BUFFERED', 'BUFFERED_PARTIAL', 'FULL_DUPLEX_STREAMED', 'GRPC'] as const;

const headerValue = fc.record(
  {
    key: fc.string({ unit: 'binary', maxLength: 20 }),
    value: fc.string({ maxLength: 20 }),
    raw_value: fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a)),
  },
  { requiredKeys: [] },
);
const headerMap = fc.record({ headers: fc.array(headerValue, { maxLength: 6 }) }, { requiredKeys: [] });
const httpHeaders = fc.record({ headers: headerMap, end_of_stream: fc.boolean() }, { requiredKeys: [] });
const httpBody = fc.record(
  {
    body: fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      fc.integer({ min: 16_380, max: 16_400 }).map((n) => Buffer.alloc(n, 0x61)),
    ),
    end_of_stream: fc.boolean(),
    end_of_stream_without_message: fc.boolean(),
    grpc_message_compressed: fc.boolean(),
  },
  { requiredKeys: [] },
);
const trailers = fc.record({ trailers: headerMap }, { requiredKeys: [] });
const member = fc.oneof(
  httpHeaders.map((h) => ({ request_headers: h })),
  httpHeaders.map((h) => ({ response_headers: h })),
  httpBody.map((b) => ({ request_body: b })),
  httpBody.map((b) => ({ response_body: b })),
  trailers.map((t) => ({ request_trailers: t })),
  trailers.map((t) => ({ response_trailers: t })),
  fc.constant({}),
);
// Wider than ProcessingRequest: a header without a key is valid on the wire.
const request: fc.Arbitrary<object> = fc
  .tuple(
    member,
    fc.option(fc.boolean(), { nil: undefined }),
    fc.option(
      fc.record(
        {
          request_body_mode: fc.constantFrom(...MODES),
          response_body_mode: fc.constantFrom(...MODES),
          send_body_without_waiting_for_header_response: fc.boolean(),
        },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    ),
  )
  .map(([m, obs, pc]) => ({
    ...m,
    ...(obs === undefined ? {} : { observability_mode: obs }),
    ...(pc === undefined ? {} : { protocol_config: pc }),
  }));

describe('request decoder', () => {
  test('what Envoy sends for one request is read by hand, as the stock decoder reads it', () => {
    const first = codec.encodeRequest({
      request_headers: {
        headers: toHeaderMap([
          [':method', 'POST'],
          [':path', '/v1/chat/completions'],
          ['content-type', 'application/json'],
          ['x-request-id', 'é'.repeat(70)],
        ]),
        end_of_stream: false,
      },
      protocol_config: {
        request_body_mode: 'FULL_DUPLEX_STREAMED',
        response_body_mode: 'FULL_DUPLEX_STREAMED',
      },
    });
    sameByHand(first);
    // Body chunks around each varint boundary of their length.
    for (const n of [0, 1, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152])
      for (const eos of [true, false]) {
        const buf = codec.encodeRequest({
          request_body: { body: Buffer.alloc(n, n % 251), end_of_stream: eos },
        });
        sameByHand(buf);
        // Zero copy: the body is a view of the message's own bytes.
        if (n > 0) expect(decodeProcessingRequest(buf)!.request_body!.body!.buffer).toBe(buf.buffer);
      }
    sameByHand(codec.encodeRequest({ response_headers: { headers: toHeaderMap([[':status', '200']]) } }));
    sameByHand(
      codec.encodeRequest({ response_body: { body: Buffer.from('{"usage":{}}'), end_of_stream: true } }),
    );
    sameByHand(codec.encodeRequest({ request_trailers: {} }));
    sameByHand(codec.encodeRequest({ response_trailers: { trailers: toHeaderMap([['grpc-status', '0']]) } }));
    sameByHand(Buffer.alloc(0));
  });

  test('the hand-computed object of one message', () => {
    // request_body (field 4, length 5) { body (1) = "hi", end_of_stream (2) = true }
    const buf = Buffer.from([0x22, 0x06, 0x0a, 0x02, 0x68, 0x69, 0x10, 0x01]);
    expect(decodeProcessingRequest(buf)).toEqual({
      request_body: { body: Buffer.from('hi'), end_of_stream: true },
      request: 'request_body',
    });
    sameByHand(buf);
  });

  test('any message built from the fields it reads: the stock decoder object', () => {
    fc.assert(
      fc.property(request, (m) => sameByHand(codec.encodeRequest(m))),
      { numRuns: 500 },
    );
  });

  test('mutated messages: left to the stock decoder, or read the same', () => {
    const mutated = fc
      .tuple(request, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.constantFrom('cut', 'flip', 'insert'))
      .map(([m, pos, byte, how]) => {
        const b = codec.encodeRequest(m);
        if (b.length === 0) return Buffer.from([byte]);
        const i = pos % b.length;
        if (how === 'cut') return b.subarray(0, i);
        if (how === 'flip')
          return Buffer.concat([b.subarray(0, i), Buffer.from([b[i]! ^ (byte || 1)]), b.subarray(i + 1)]);
        return Buffer.concat([b.subarray(0, i), Buffer.from([byte]), b.subarray(i)]);
      });
    fc.assert(
      fc.property(mutated, (buf) => agrees(buf)),
      { numRuns: 3000 },
    );
  });

  test('what it leaves to the stock decoder', () => {
    const left = (buf: Buffer) => expect(decodeProcessingRequest(buf)).toBeUndefined();
    // metadata_context (the gateway's subset hint) and attributes.
    left(
      codec.encodeRequest({
        request_headers: { headers: toHeaderMap([[':path', '/']]) },
        metadata_context: { filter_metadata: { 'envoy.lb': { fields: { a: { stringValue: 'b' } } } } },
      }),
    );
    left(codec.encodeRequest({ attributes: { x: { fields: {} } } }));
    // An unknown field (15, varint 1), a field twice, two oneof members.
    left(Buffer.from([0x78, 0x01]));
    left(Buffer.from([0x50, 0x01, 0x50, 0x00]));
    left(Buffer.from([0x22, 0x00, 0x2a, 0x00]));
    // A wire type the schema does not give the field (request_body as a varint).
    left(Buffer.from([0x20, 0x01]));
    // An enum value the schema does not name; a 5-byte varint.
    left(Buffer.from([0x5a, 0x02, 0x08, 0x09]));
    left(Buffer.from([0x50, 0x81, 0x80, 0x80, 0x80, 0x00]));
    // A length past the end.
    left(Buffer.from([0x22, 0x07, 0x0a, 0x02, 0x68, 0x69]));
    for (const b of [
      [0x78, 0x01],
      [0x50, 0x01, 0x50, 0x00],
      [0x5a, 0x02, 0x08, 0x09],
    ]) {
      // What the EPP's deserializer gives for those is the stock decoder's answer.
      expect(canonical(codec.decodeRequest(Buffer.from(b)))).toBe(
        canonical(codec.stockDecodeRequest(Buffer.from(b))),
      );
    }
  });
});
