// The EPP's ext_proc stream under hostile input, against a spawned EPP
// (PD profile, three fake model servers):
//  - well-formed exchanges carrying hostile bodies (wrong types for every
//    OpenAI field, invalid UTF-8, deep nesting, bodies split anywhere, over
//    the size limit) and hostile headers (injected destination and PD
//    headers, duplicated, any case; huge header lists);
//  - malformed message sequences written with grpc-js directly
//    (out-of-order phases, repeated phases, empty messages, half-close
//    anywhere) and frames that are not protobuf at all.
// Asserted: the process stays up; every stream ends with well-formed replies
// (continue / routed headers / streamed body, or an ImmediateResponse with
// a 4xx for client mistakes); the destination and PD headers the EPP sends
// name only real endpoints, never what the client injected; charges are all
// released afterwards; RSS stays bounded.
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  destinationOf,
  ExtProcClient,
  headerOf,
  type HeaderList,
  type RequestBodyMode,
} from '../../src/gateway/extproc-client.js';
import { toHeaderMap, type ProcessingRequest, type ProcessingResponse } from '../../src/extproc/messages.js';
import { extProcClientConstructor } from '../../src/extproc/proto.js';
import { PD_CONFIG, pdGroupEndpoints, startEpp, type Epp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { metricSum, stopAllSpawned } from '../helpers/spawn.js';
import { eventually } from '../helpers/wait.js';
import { weirdScalar, yamlDoc } from './arbitraries.js';

const RUN = { numRuns: 120, interruptAfterTimeLimit: 6_000, markInterruptAsFailure: false } as const;
const MAX_BODY = 256 * 1024;
const DEST = 'x-gateway-destination-endpoint';
const PREFILL = 'x-openfuyao-prefill-pod-address-port';
const DECODE = 'x-openfuyao-decode-pod-address-port';
const INJECTED = '6.6.6.6:1';

let models: FakeModel[] = [];
let epp: Epp;
let grpcPort = 0;
let adminUrl = '';
let client: ExtProcClient;
let known: Set<string>;

beforeAll(async () => {
  models = await Promise.all([fakeModel(), fakeModel(), fakeModel()]);
  known = new Set(models.map((m) => m.id));
  epp = await startEpp({
    config: PD_CONFIG,
    endpoints: pdGroupEndpoints([models[0]!.port, models[1]!.port, models[2]!.port]),
    args: ['--max-request-body', String(MAX_BODY), '--log-level', 'warn'],
    client: { deadlineMs: 15_000 },
  });
  ({ grpcPort, adminUrl, client } = epp);
});

afterAll(async () => {
  await Promise.all(models.map((m) => m.close()));
  await stopAllSpawned();
});

// ---- generators ----

const anyJson = fc.oneof(weirdScalar, yamlDoc(3));
const validChat = { model: 'm', messages: [{ role: 'user', content: 'hello there' }], stream: true };
const validCompletion = { model: 'm', prompt: 'a prompt' };
const FIELDS = [
  'model',
  'messages',
  'prompt',
  'stream',
  'max_tokens',
  'stream_options',
  'temperature',
  'n',
  'kv_transfer_params',
];

const bodyArb: fc.Arbitrary<{ path: string; body: Buffer }> = fc.oneof(
  // Each OpenAI field of a valid body replaced by any value, or removed.
  fc
    .tuple(fc.boolean(), fc.constantFrom(...FIELDS), fc.option(anyJson, { nil: undefined }))
    .map(([chat, field, value]) => {
      const b: Record<string, unknown> = { ...(chat ? validChat : validCompletion) };
      if (value === undefined) delete b[field];
      else b[field] = value;
      return {
        path: chat ? '/v1/chat/completions' : '/v1/completions',
        body: Buffer.from(JSON.stringify(b)),
      };
    }),
  // Random bytes (invalid UTF-8 included) and random text.
  fc
    .tuple(
      fc.constantFrom('/v1/chat/completions', '/v1/completions', '/'),
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
        fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
      ),
    )
    .map(([path, body]) => ({ path, body })),
  // Valid bodies with multi-byte text (split points will land inside characters).
  fc.string({ unit: 'grapheme', maxLength: 80 }).map((s) => ({
    path: '/v1/chat/completions',
    body: Buffer.from(JSON.stringify({ ...validChat, messages: [{ role: 'user', content: `ü€😀${s}` }] })),
  })),
  // Invalid UTF-8 inside a JSON string of an otherwise valid body.
  fc.uint8Array({ minLength: 1, maxLength: 16 }).map((u) => ({
    path: '/v1/completions',
    body: Buffer.concat([
      Buffer.from('{"model":"m","prompt":"'),
      Buffer.from(u.map((x) => x | 0x80)),
      Buffer.from('"}'),
    ]),
  })),
  // Deep nesting and enormous JSON.
  fc.constantFrom(
    {
      path: '/v1/chat/completions',
      body: Buffer.from(`{"model":"m","messages":${'['.repeat(50_000)}${']'.repeat(50_000)}}`),
    },
    {
      path: '/v1/completions',
      body: Buffer.from(`{"model":"m","prompt":"x","extra":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`),
    },
    {
      path: '/v1/completions',
      body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'p'.repeat(MAX_BODY + 10) })),
    },
    {
      path: '/v1/completions',
      body: Buffer.from(JSON.stringify({ model: 'm', prompt: Array.from({ length: 40_000 }, (_, i) => i) })),
    },
  ),
);

/** Splits `body` at random offsets (possibly inside a UTF-8 sequence; empty chunks allowed). */
function split(body: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(body.subarray(prev, c));
    prev = c;
  }
  out.push(body.subarray(prev));
  return out;
}

const caseOf = (name: string, k: number) =>
  k === 0
    ? name
    : k === 1
      ? name.toUpperCase()
      : name.replace(/(^|-)(\w)/g, (_m, d: string, c: string) => d + c.toUpperCase());
const injectedHeaders = fc
  .array(
    fc.tuple(
      fc.constantFrom(DEST, PREFILL, DECODE, 'x-gateway-destination-endpoint-served'),
      fc.nat({ max: 2 }),
      fc.constantFrom(INJECTED, `${INJECTED},${INJECTED}`, '', ' ', '127.0.0.1:1'),
    ),
    { maxLength: 5 },
  )
  .map((hs) => hs.map(([n, k, v]) => [caseOf(n, k), v] as [string, string]));
const extraHeaders = fc.array(
  fc.tuple(
    fc.string({ unit: fc.constantFrom(...'abcxyz-_:'.split('')), minLength: 1, maxLength: 12 }),
    fc.string({ maxLength: 30 }),
  ),
  { maxLength: 4 },
);

function expectOpenAIImmediate(status: number, body: Buffer): void {
  expect(status).toBeGreaterThanOrEqual(400);
  expect(status).toBeLessThan(500);
  const doc = JSON.parse(body.toString()) as { error: { message: string; code: number } };
  expect(doc.error.code).toBe(status);
  expect(doc.error.message.length).toBeGreaterThan(0);
}

function expectRoutedOnlyToKnown(headers: HeaderList, meta: Record<string, Record<string, unknown>>): void {
  const dests = headers.filter(([k]) => k.toLowerCase() === DEST);
  expect(dests, 'exactly one destination header').toHaveLength(1);
  const chosen = destinationOf({
    kind: 'continue',
    headers,
    body: Buffer.alloc(0),
    dynamicMetadata: meta,
    clearRouteCache: false,
    replies: [],
  });
  expect(chosen.length).toBeGreaterThan(0);
  for (const d of chosen) expect(known.has(d), `destination ${d}`).toBe(true);
  const metaDest = meta['envoy.lb']?.[DEST];
  expect(typeof metaDest).toBe('string');
  for (const d of String(metaDest).split(',')) expect(known.has(d.trim())).toBe(true);
  for (const h of [PREFILL, DECODE]) {
    const vs = headers.filter(([k]) => k.toLowerCase() === h);
    expect(vs.length, `${h} at most once`).toBeLessThanOrEqual(1);
    for (const [, v] of vs) expect(known.has(v), `${h}: ${v}`).toBe(true);
  }
  // (x-gateway-destination-endpoint-served is a response-side report, not a routing input.)
  expect(
    headers.some(([k, v]) => [DEST, PREFILL, DECODE].includes(k.toLowerCase()) && v.includes(INJECTED)),
  ).toBe(false);
}

async function eventuallyZeroInFlight(): Promise<void> {
  await eventually(async () => (await epp.inFlight()) === 0, 10_000, 'every charge released', 100);
}

// ---- raw grpc-js access for sequences the client helper refuses to send ----

type RawCall = grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;

function rawOpen(): RawCall {
  const Ctor = extProcClientConstructor();
  const c = new Ctor(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  }) as unknown as {
    Process(md: grpc.Metadata, o: grpc.CallOptions): RawCall;
    close(): void;
  };
  const call = c.Process(new grpc.Metadata(), { deadline: Date.now() + 10_000 });
  call.on('status', () => c.close());
  return call;
}

/** Writes `msgs`, half-closes, and collects replies until the stream ends. */
function rawExchange(
  msgs: ProcessingRequest[],
  opts: { halfClose?: boolean } = {},
): Promise<{ replies: ProcessingResponse[]; code: grpc.status }> {
  return new Promise((resolve) => {
    const call = rawOpen();
    const replies: ProcessingResponse[] = [];
    let settled = false;
    const done = (code: grpc.status) => {
      if (settled) return;
      settled = true;
      resolve({ replies, code });
    };
    call.on('data', (r: ProcessingResponse) => replies.push(r));
    call.on('error', (e: grpc.ServiceError) => done(e.code));
    call.on('end', () => done(grpc.status.OK));
    for (const m of msgs) call.write(m);
    if (opts.halfClose !== false) call.end();
    else setTimeout(() => call.cancel(), 100);
  });
}

const REPLY_KINDS = new Set([
  'request_headers',
  'request_body',
  'request_trailers',
  'response_headers',
  'response_body',
  'response_trailers',
  'immediate_response',
]);

function expectWellFormed(replies: ProcessingResponse[], code: grpc.status, protocolError: boolean): void {
  expect([grpc.status.OK, grpc.status.CANCELLED]).toContain(code);
  for (const r of replies) {
    expect(REPLY_KINDS.has(String(r.response)), `reply kind ${String(r.response)}`).toBe(true);
    if (r.response === 'immediate_response') {
      const status =
        Number(String(r.immediate_response?.status?.code ?? '').replace(/\D/g, '')) ||
        statusFromEnum(r.immediate_response?.status?.code);
      // Client mistakes are 4xx; a gateway that breaks the protocol gets 500.
      if (protocolError)
        expect(status === 500 || (status >= 400 && status < 500), `status ${status}`).toBe(true);
      else expect(status >= 400 && status < 500, `status ${status}`).toBe(true);
    }
    if (r.response === 'request_headers' || r.response === 'request_body') {
      const hm = (r.request_headers ?? r.request_body)?.response?.header_mutation;
      for (const s of hm?.set_headers ?? []) {
        const k = s.header.key.toLowerCase();
        if (k === DEST || k === PREFILL || k === DECODE) {
          const v = (s.header.raw_value ?? Buffer.from(s.header.value ?? '')).toString('latin1');
          for (const d of v.split(',')) expect(known.has(d.trim()), `${k}: ${v}`).toBe(true);
        }
      }
    }
  }
}

function statusFromEnum(code: unknown): number {
  // enums: String -> names such as 'BadRequest'; map the ones the EPP uses.
  const names: Record<string, number> = {
    BadRequest: 400,
    PayloadTooLarge: 413,
    TooManyRequests: 429,
    InternalServerError: 500,
    ServiceUnavailable: 503,
  };
  return names[String(code)] ?? 0;
}

const hdr = (h: Array<[string, string]>, eos = false): ProcessingRequest => ({
  request_headers: { headers: toHeaderMap(h), end_of_stream: eos },
});
const baseHeaders: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/completions'],
  ['content-type', 'application/json'],
];
const msgArb: fc.Arbitrary<ProcessingRequest> = fc.oneof(
  fc.tuple(injectedHeaders, fc.boolean()).map(([inj, eos]) => hdr([...baseHeaders, ...inj], eos)),
  fc
    .tuple(
      fc.oneof(
        fc.constant(Buffer.from(JSON.stringify(validCompletion))),
        fc.uint8Array({ maxLength: 40 }).map((u) => Buffer.from(u)),
      ),
      fc.boolean(),
    )
    .map(([body, eos]) => ({ request_body: { body, end_of_stream: eos } })),
  fc.constant<ProcessingRequest>({ request_trailers: { trailers: toHeaderMap([['x-t', '1']]) } }),
  fc.boolean().map((eos): ProcessingRequest => ({
    response_headers: {
      headers: toHeaderMap([
        [':status', '200'],
        ['content-type', 'text/event-stream'],
      ]),
      end_of_stream: eos,
    },
  })),
  fc
    .tuple(fc.uint8Array({ maxLength: 40 }), fc.boolean())
    .map(([b, eos]): ProcessingRequest => ({ response_body: { body: Buffer.from(b), end_of_stream: eos } })),
  fc.constant<ProcessingRequest>({ response_trailers: { trailers: toHeaderMap([]) } }),
  fc.constant<ProcessingRequest>({}),
  fc.constantFrom<ProcessingRequest>(
    { protocol_config: { request_body_mode: 'BUFFERED', response_body_mode: 'STREAMED' } },
    { protocol_config: { request_body_mode: 'FULL_DUPLEX_STREAMED', response_body_mode: 'NONE' } },
    { observability_mode: true },
  ),
);

describe('ext_proc under hostile input (spawned EPP)', () => {
  it('a valid request is routed to the PD group with its prefill and decode pods (baseline)', async () => {
    const ex = client.open();
    const v = await ex.sendRequest({
      headers: [...baseHeaders, [DEST, INJECTED], [PREFILL, INJECTED]],
      body: Buffer.from(JSON.stringify(validCompletion)),
    });
    expect(v.kind).toBe('continue');
    if (v.kind !== 'continue') return;
    expectRoutedOnlyToKnown(v.headers, v.dynamicMetadata);
    expect(headerOf(v.headers, PREFILL)).toBe(models[1]!.id);
    expect(headerOf(v.headers, DECODE)).toBe(models[2]!.id);
    await ex.sendResponseHeaders([[':status', '200']]);
    for await (const _ of ex.streamResponseBody([Buffer.from('data: [DONE]\n\n')])) void _;
    ex.end();
    await ex.done;
  });

  it('hostile bodies split anywhere, with injected routing headers, in both request body modes', async () => {
    const rss0 = epp.proc.rssBytes();
    let routed = 0;
    let rejected = 0;
    await fc.assert(
      fc.asyncProperty(
        bodyArb,
        fc.array(fc.nat(), { maxLength: 6 }),
        injectedHeaders,
        extraHeaders,
        fc.constantFrom<RequestBodyMode>('FULL_DUPLEX_STREAMED', 'BUFFERED'),
        fc.constantFrom('complete', 'cancel', 'end'),
        async ({ path, body }, cuts, inj, extra, mode, finish) => {
          const ex = client.open({ requestBodyMode: mode, responseBodyMode: 'FULL_DUPLEX_STREAMED' });
          const headers: HeaderList = [
            [':method', 'POST'],
            [':path', path],
            ['content-type', 'application/json'],
            ...extra,
            ...inj,
          ];
          const v = await ex.sendRequest({ headers, body: mode === 'BUFFERED' ? body : split(body, cuts) });
          if (v.kind === 'immediate') {
            rejected++;
            expectOpenAIImmediate(v.status, v.body);
            ex.end();
            await ex.done;
            return;
          }
          routed++;
          expectRoutedOnlyToKnown(v.headers, v.dynamicMetadata);
          // The body reaches the model server byte for byte.
          expect(v.body.equals(body)).toBe(true);
          if (finish === 'cancel') return ex.cancel();
          if (finish === 'complete') {
            await ex.sendResponseHeaders([
              [':status', '200'],
              ['content-type', 'text/event-stream'],
            ]);
            const chunks = split(
              Buffer.from(
                'data: {"choices":[{"text":"ü"}]}\n\ndata: {"usage":{"prompt_tokens":1,"completion_tokens":2}}\n\ndata: [DONE]\n\n',
              ),
              cuts,
            );
            const back: Buffer[] = [];
            for await (const c of ex.streamResponseBody(chunks)) back.push(c);
            expect(Buffer.concat(back).equals(Buffer.concat(chunks))).toBe(true);
          }
          ex.end();
          await ex.done;
        },
      ),
      RUN,
    );
    expect(routed).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
    expect(epp.proc.alive()).toBe(true);
    await eventuallyZeroInFlight();
    expect(epp.proc.rssBytes() - rss0).toBeLessThan(150 * 1024 * 1024);
  });

  it('huge and odd headers: thousands of headers, a 1 MB value, non-Latin-1 bytes, pseudo-headers repeated', async () => {
    const cases: HeaderList[] = [
      [...baseHeaders, ...Array.from({ length: 5_000 }, (_, i) => [`x-h${i}`, 'v'] as [string, string])],
      [...baseHeaders, ['x-big', 'b'.repeat(1024 * 1024)]],
      [...baseHeaders, [DEST, 'x'.repeat(100_000)], [DEST.toUpperCase(), INJECTED]],
      [...baseHeaders, [':path', '/v1/chat/completions'], [':path', '/v1/completions']],
      [...baseHeaders, ['content-length', '-5'], ['content-length', 'abc']],
      [...baseHeaders, ['content-length', String(MAX_BODY * 10)]],
      [...baseHeaders, ['x-request-id', 'r'.repeat(10_000)]],
    ];
    for (const headers of cases) {
      const ex = client.open();
      const v = await ex.sendRequest({ headers, body: Buffer.from(JSON.stringify(validCompletion)) });
      if (v.kind === 'immediate') expectOpenAIImmediate(v.status, v.body);
      else expectRoutedOnlyToKnown(v.headers, v.dynamicMetadata);
      ex.end();
      await ex.done;
    }
    // Non-Latin-1 / binary header values straight through grpc.
    const { replies, code } = await rawExchange([
      {
        request_headers: {
          headers: {
            headers: [
              { key: ':path', raw_value: Buffer.from('/v1/completions') },
              { key: 'x-bin', raw_value: Buffer.from([0, 0xff, 0xfe, 0x80]) },
              { key: DEST, value: INJECTED },
              { key: '', raw_value: Buffer.from('empty key') },
            ],
          },
          end_of_stream: false,
        },
      },
      { request_body: { body: Buffer.from(JSON.stringify(validCompletion)), end_of_stream: true } },
    ]);
    expectWellFormed(replies, code, false);
    expect(replies.some((r) => r.response === 'request_headers')).toBe(true);
    expect(epp.proc.alive()).toBe(true);
  });

  it('random message sequences (out-of-order phases, repeats, empty messages, mode switches): well-formed replies, stream ends', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(msgArb, { minLength: 1, maxLength: 8 }),
        fc.boolean(),
        async (msgs, halfClose) => {
          const { replies, code } = await rawExchange(msgs, { halfClose });
          expectWellFormed(replies, code, true);
        },
      ),
      { ...RUN, numRuns: 200 },
    );
    expect(epp.proc.alive()).toBe(true);
    await eventuallyZeroInFlight();
  });

  it('admin API: random methods, paths, query strings and headers never get a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
        fc.constantFrom(
          '/healthz',
          '/readyz',
          '/state/endpoints',
          '/state/loads',
          '/state/decisions',
          '/state/',
          '/state/../healthz',
          '/%00',
          '/state/decisions/%ff',
          '/' + 'a'.repeat(5_000),
        ),
        fc.oneof(
          fc.constant(''),
          fc.string({ maxLength: 30 }).map((q) => `?limit=${encodeURIComponent(q)}`),
          fc.constantFrom(
            '?limit=-1',
            '?limit=1e308',
            '?limit=99999999',
            '?limit=NaN',
            '?limit=1&limit=2',
            '?' + 'x=1&'.repeat(2_000),
          ),
        ),
        fc.option(
          fc.string({ maxLength: 40 }).filter((v) => /^[\x20-\x7e]*$/.test(v)),
          { nil: undefined },
        ),
        async (method, path, query, auth) => {
          const r = await fetch(`${adminUrl}${path}${query}`, {
            method,
            headers: auth !== undefined ? { authorization: auth } : {},
            body: method === 'GET' || method === 'OPTIONS' ? undefined : 'junk',
          });
          await r.arrayBuffer();
          expect(r.status, `${method} ${path}${query.slice(0, 50)}`).toBeLessThan(500);
        },
      ),
      { ...RUN, numRuns: 150 },
    );
    expect(epp.proc.alive()).toBe(true);
  });

  it('frames that are not protobuf end the stream with a gRPC error, and the EPP keeps serving', async () => {
    const garbage = fc.sample(fc.uint8Array({ minLength: 1, maxLength: 200 }), { numRuns: 40, seed: 7 });
    const generic = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure());
    for (const g of garbage) {
      const code = await new Promise<grpc.status>((resolve) => {
        const call = generic.makeBidiStreamRequest(
          '/envoy.service.ext_proc.v3.ExternalProcessor/Process',
          (b: Buffer) => b,
          (b: Buffer) => b,
          new grpc.Metadata(),
          { deadline: Date.now() + 5_000 },
        );
        call.on('data', () => undefined);
        call.on('error', (e: grpc.ServiceError) => resolve(e.code));
        call.on('end', () => resolve(grpc.status.OK));
        call.write(Buffer.from(g));
        call.end();
      });
      expect(code).not.toBe(grpc.status.DEADLINE_EXCEEDED);
    }
    generic.close();
    // Still routes.
    const ex = client.open();
    const v = await ex.sendRequest({
      headers: baseHeaders,
      body: Buffer.from(JSON.stringify(validCompletion)),
    });
    expect(v.kind).toBe('continue');
    ex.cancel();
    expect(epp.proc.alive()).toBe(true);
    await eventuallyZeroInFlight();
    const metrics = await epp.metricsText();
    // The EPP counted the requests it answered, errors included.
    expect(metricSum(metrics, 'inference_objective_request_total') ?? 0).toBeGreaterThan(0);
    expect(metricSum(metrics, 'inference_objective_request_error_total') ?? 0).toBeGreaterThan(0);
  });
});
