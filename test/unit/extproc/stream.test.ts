// ProcessStream in-process, without gRPC: message order edge cases.
import { describe, expect, test } from 'vitest';
import { DEFAULT_CONFIG_TEXT, loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { Director } from '../../../src/director/director.js';
import {
  statusCodeNumber,
  toHeaderMap,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../../src/extproc/messages.js';
import { ProcessStream, type StreamOptions } from '../../../src/extproc/stream.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { requestBodyPool } from '../../../src/request/body-pool.js';

async function setup(overrides: Partial<StreamOptions> = {}) {
  const store = new MemoryStateStore();
  await store.replaceEndpoints([
    { id: '10.0.0.1:8000', name: 'a', address: '10.0.0.1', port: 8000, labels: {} },
  ]);
  const director = new Director({
    store,
    profile: loadConfigText(DEFAULT_CONFIG_TEXT, 't', builtinRegistry()).profile,
  });
  const out: ProcessingResponse[] = [];
  let ended = false;
  const s = new ProcessStream(
    { write: (m) => out.push(m), end: () => (ended = true) },
    {
      director,
      logger: silentLogger(),
      destinationHeader: 'x-gateway-destination-endpoint',
      metadataNamespace: 'envoy.lb',
      maxBodyBytes: 1024,
      defaultRequestBodyMode: 'FULL_DUPLEX_STREAMED',
      defaultResponseBodyMode: 'FULL_DUPLEX_STREAMED',
      observer: {},
      ...overrides,
    },
  );
  const send = async (...msgs: ProcessingRequest[]) => {
    for (const m of msgs) s.receive(m);
    await s.settled();
  };
  return { s, out, send, store, director, isEnded: () => ended };
}

const hdrs = (eos = false): ProcessingRequest => ({
  request_headers: {
    headers: toHeaderMap([
      [':path', '/v1/completions'],
      ['x-request-id', 'r1'],
    ]),
    end_of_stream: eos,
  },
});
const body = (text: string, eos: boolean): ProcessingRequest => ({
  request_body: { body: Buffer.from(text), end_of_stream: eos },
});

describe('ProcessStream', () => {
  test('FULL_DUPLEX: nothing is sent before the body ends', async () => {
    const { out, send } = await setup();
    await send(hdrs(), body('{"model":"m",', false));
    expect(out).toHaveLength(0);
    await send(body('"prompt":"p"}', true));
    expect(out.map((m) => m.response ?? Object.keys(m)[0])).toEqual(['request_headers', 'request_body']);
  });

  test('request trailers end a body that had no end_of_stream', async () => {
    const { out, send } = await setup();
    await send(hdrs(), body('{"model":"m","prompt":"p"}', false), { request_trailers: {} });
    const kinds = out.map((m) => Object.keys(m).find((k) => k !== 'dynamic_metadata'));
    expect(kinds).toEqual(['request_headers', 'request_body', 'request_trailers']);
    expect(out[1]!.request_body!.response!.body_mutation!.streamed_response!.end_of_stream).toBe(false);
  });

  test('protocol_config BUFFERED on the first message switches the reply pattern', async () => {
    const { out, send } = await setup();
    await send({ ...hdrs(), protocol_config: { request_body_mode: 'BUFFERED' } });
    expect(out).toEqual([{ request_headers: { response: {} } }]);
    await send(body('{"model":"m","prompt":"p"}', true));
    expect(out[1]!.request_body!.response!.clear_route_cache).toBe(true);
  });

  test('observability_mode: the EPP observes but never replies', async () => {
    const { out, send, director } = await setup();
    await send({ ...hdrs(), observability_mode: true }, body('{"model":"m","prompt":"p"}', true));
    expect(out).toHaveLength(0);
    expect(director.openPicks).toBe(1);
  });

  test('body before headers is a protocol error answered 500, and the stream ends', async () => {
    const { out, send, isEnded } = await setup();
    await send(body('{}', true));
    expect(statusCodeNumber(out[0]!.immediate_response!.status!.code)).toBe(500);
    expect(isEnded()).toBe(true);
  });

  test('a failing director is a 500 naming the request id, not a crashed stream', async () => {
    const { out, send, store } = await setup();
    store.readSnapshot = () => Promise.reject(new Error('store exploded'));
    await send(hdrs(), body('{"model":"m","prompt":"p"}', true));
    const ir = out[0]!.immediate_response!;
    expect(statusCodeNumber(ir.status!.code)).toBe(500);
    expect(ir.body!.toString()).toContain('r1');
  });

  test('release happens once: response end, then stream close', async () => {
    const { send, s, store, director } = await setup();
    await send(hdrs(), body('{"model":"m","prompt":"p"}', true));
    expect((await store.readSnapshot({})).inFlight.get('10.0.0.1:8000')).toBe(1);
    await send(
      { response_headers: { headers: toHeaderMap([[':status', '200']]) } },
      { response_body: { body: Buffer.from('{}'), end_of_stream: true } },
    );
    expect((await store.readSnapshot({})).inFlight.get('10.0.0.1:8000') ?? 0).toBe(0);
    expect(director.openPicks).toBe(0);
    s.close('cancelled');
    await s.settled();
    expect((await store.readSnapshot({})).inFlight.get('10.0.0.1:8000') ?? 0).toBe(0);
  });

  test('the first response body chunk releases the prefill tokens; the end releases the rest', async () => {
    const { send, store } = await setup();
    const ep = '10.0.0.1:8000';
    const prompt = 'x'.repeat(400);
    await send(hdrs(), body(JSON.stringify({ model: 'm', prompt }), true));
    const charged = await store.readSnapshot({});
    expect(charged.pendingPrefillTokens.get(ep)).toBeGreaterThan(0);
    await send(
      { response_headers: { headers: toHeaderMap([[':status', '200']]) } },
      { response_body: { body: Buffer.from('data: {"choices":[]}\n\n'), end_of_stream: false } },
    );
    const first = await store.readSnapshot({});
    expect(first.pendingPrefillTokens.get(ep) ?? 0).toBe(0);
    expect(first.inFlight.get(ep)).toBe(1);
    await send({ response_body: { body: Buffer.from('data: [DONE]\n\n'), end_of_stream: true } });
    const done = await store.readSnapshot({});
    expect(done.inFlight.get(ep) ?? 0).toBe(0);
    expect(done.pendingPrefillTokens.get(ep) ?? 0).toBe(0);
  });
});

describe('ProcessStream: a pooled request body', () => {
  test('goes back to the pool only when the last body reply has been written, intact until then', async () => {
    const prompt = 'p'.repeat(12_000);
    const text = Buffer.from(JSON.stringify({ model: 'm', prompt }));
    const pieces = [text.subarray(0, 6000), text.subarray(6000)]; // both borrowed: joined in a pooled buffer
    const { out, send, written } = await setupWithCallbacks();
    const retained = requestBodyPool.retained;
    await send(hdrs(), body2(pieces[0]!, false), body2(pieces[1]!, true));
    const chunks = out.filter((m) => m.request_body);
    expect(chunks).toHaveLength(1);
    // Not released yet: the reply still carries the pooled bytes.
    const lent = requestBodyPool.retained;
    expect(lent).toBe(Math.max(0, retained - 1));
    expect(
      Buffer.from(chunks[0]!.request_body!.response!.body_mutation!.streamed_response!.body!).equals(text),
    ).toBe(true);
    for (const w of written.slice(0, -1)) w?.();
    expect(requestBodyPool.retained).toBe(lent);
    written.at(-1)!();
    expect(requestBodyPool.retained).toBe(lent + 1);
  });
});

async function setupWithCallbacks() {
  const store = new MemoryStateStore();
  await store.replaceEndpoints([
    { id: '10.0.0.1:8000', name: 'a', address: '10.0.0.1', port: 8000, labels: {} },
  ]);
  const director = new Director({
    store,
    profile: loadConfigText(DEFAULT_CONFIG_TEXT, 't', builtinRegistry()).profile,
  });
  const out: ProcessingResponse[] = [];
  const written: Array<(() => void) | undefined> = [];
  const s = new ProcessStream(
    {
      write: (m, w) => {
        out.push(m);
        written.push(w);
      },
      end: () => undefined,
    },
    {
      director,
      logger: silentLogger(),
      destinationHeader: 'x-gateway-destination-endpoint',
      metadataNamespace: 'envoy.lb',
      maxBodyBytes: 1 << 20,
      defaultRequestBodyMode: 'FULL_DUPLEX_STREAMED',
      defaultResponseBodyMode: 'FULL_DUPLEX_STREAMED',
      observer: {},
    },
  );
  const send = async (...msgs: ProcessingRequest[]) => {
    for (const m of msgs) s.receive(m);
    await s.settled();
  };
  return { out, send, written };
}

const body2 = (b: Buffer, eos: boolean): ProcessingRequest => ({
  request_body: { body: b, end_of_stream: eos },
});
