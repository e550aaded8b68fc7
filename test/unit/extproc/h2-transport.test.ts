// The lean gRPC transport on node:http2 (src/extproc/h2-transport.ts),
// driven by a raw HTTP/2 client so every byte and frame is the test's
// choice, and by grpc-js's client (the one the EPP's tests and benches use):
// unknown methods, content types, messages cut across DATA frames and
// several per frame, the receive limit, the compressed flag, grpc-timeout,
// cancellation mid-body and mid-exchange (the pick is released), drain.
import * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { ExtProcClient } from '../../../src/gateway/extproc-client.js';
import { frameMessage, GrpcStatus } from '../../../src/extproc/grpc-framing.js';
import { LeanGrpcServer, type LeanCall } from '../../../src/extproc/h2-transport.js';
import type { ProcessingRequest } from '../../../src/extproc/messages.js';
import { processCodec } from '../../../src/extproc/proto.js';
import { memoryExtProcService } from '../../helpers/extproc-service.js';

const PROCESS = '/envoy.service.ext_proc.v3.ExternalProcessor/Process';
const ECHO = '/test.Echo/Echo';
const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

interface EchoEvents {
  calls: Array<LeanCall<Buffer, Buffer>>;
  events: string[];
}

/** A lean server with an echo method (each message back; OK at the client's end). */
async function echoServer(max = 1024 * 1024): Promise<{ port: number; server: LeanGrpcServer } & EchoEvents> {
  const server = new LeanGrpcServer({
    maxReceiveMessageBytes: max,
    keepaliveTimeMs: 0,
    keepaliveTimeoutMs: 0,
  });
  const calls: Array<LeanCall<Buffer, Buffer>> = [];
  const events: string[] = [];
  server.addMethod<Buffer, Buffer>({
    path: ECHO,
    deserialize: (b) => b,
    serialize: (m) => m,
    handler: (call) => {
      calls.push(call);
      call.on('data', (m: Buffer) => {
        events.push(`data ${m.toString()}`);
        call.write(m);
      });
      call.on('end', () => {
        events.push('end');
        call.end();
      });
      call.on('cancelled', () => events.push('cancelled'));
    },
  });
  const port = await server.listen(0, '127.0.0.1');
  cleanup.push(() => server.forceShutdown());
  return { port, server, calls, events };
}

interface RawResult {
  status: number | undefined;
  headers: http2.IncomingHttpHeaders;
  trailers: http2.IncomingHttpHeaders;
  messages: Buffer[];
}

function connect(port: number): http2.ClientHttp2Session {
  const s = http2.connect(`http://127.0.0.1:${port}`);
  s.on('error', () => undefined);
  cleanup.push(() => s.destroy());
  return s;
}

/** Sends `writes` as separate DATA frames, then ends; resolves with what came back. */
function rawCall(
  session: http2.ClientHttp2Session,
  path: string,
  writes: Buffer[],
  headers: http2.OutgoingHttpHeaders = {},
): Promise<RawResult> {
  const req = session.request({
    ':method': 'POST',
    ':path': path,
    'content-type': 'application/grpc',
    te: 'trailers',
    ...headers,
  });
  return new Promise((resolve, reject) => {
    const res: RawResult = { status: undefined, headers: {}, trailers: {}, messages: [] };
    const data: Buffer[] = [];
    req.on('response', (h) => {
      res.headers = h;
      res.status = h[':status'];
    });
    req.on('trailers', (t) => (res.trailers = t));
    req.on('data', (d: Buffer) => data.push(d));
    req.on('error', reject);
    req.on('close', () => {
      const all = Buffer.concat(data);
      for (let o = 0; o + 5 <= all.length;) {
        const n = all.readUInt32BE(o + 1);
        res.messages.push(all.subarray(o + 5, o + 5 + n));
        o += 5 + n;
      }
      resolve(res);
    });
    (async () => {
      for (const w of writes) {
        req.write(w);
        // A turn of the loop between writes: each goes out as its own DATA frame.
        await new Promise((r) => setImmediate(r));
      }
      req.end();
    })().catch(reject);
  });
}

/** grpc-status of a result: from the trailers, or the headers of a trailers-only answer. */
const statusOf = (r: RawResult) => Number(r.trailers['grpc-status'] ?? r.headers['grpc-status']);
const messageOf = (r: RawResult) =>
  decodeURIComponent(String(r.trailers['grpc-message'] ?? r.headers['grpc-message']));

describe('lean transport: gRPC over HTTP/2', () => {
  it('headers, messages, trailers with grpc-status 0; messages cut across frames and several per frame', async () => {
    const srv = await echoServer();
    const wire = Buffer.concat(['a', 'bb', '', 'ccc'].map((s) => frameMessage(Buffer.from(s))));
    // Cuts: inside the first prefix, inside a payload, then the last two messages in one frame.
    const r = await rawCall(connect(srv.port), ECHO, [
      wire.subarray(0, 3),
      wire.subarray(3, 12),
      wire.subarray(12),
    ]);
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/grpc+proto');
    expect(statusOf(r)).toBe(GrpcStatus.OK);
    expect(r.trailers['grpc-status']).toBe('0');
    expect(r.messages.map(String)).toEqual(['a', 'bb', '', 'ccc']);
    expect(srv.events).toEqual(['data a', 'data bb', 'data ', 'data ccc', 'end', 'cancelled']);
  });

  it('an unknown method: trailers-only grpc-status 12 UNIMPLEMENTED, as grpc-js words it', async () => {
    const srv = await echoServer();
    const r = await rawCall(connect(srv.port), '/no.Such/Method', [frameMessage(Buffer.from('x'))]);
    expect(r.status).toBe(200);
    expect(statusOf(r)).toBe(GrpcStatus.UNIMPLEMENTED);
    expect(messageOf(r)).toBe('The server does not implement the method /no.Such/Method');
    expect(srv.calls).toHaveLength(0);
  });

  it('a content type other than application/grpc*: HTTP 415, as grpc-js', async () => {
    const srv = await echoServer();
    const r = await rawCall(connect(srv.port), ECHO, [], { 'content-type': 'application/json' });
    expect(r.status).toBe(415);
  });

  it('a message over the receive limit: RESOURCE_EXHAUSTED, the handler cancelled, nothing delivered', async () => {
    const srv = await echoServer(16);
    const r = await rawCall(connect(srv.port), ECHO, [
      frameMessage(Buffer.from('small')),
      frameMessage(Buffer.alloc(17, 0x61)),
    ]);
    expect(statusOf(r)).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(messageOf(r)).toBe('Received message larger than max (17 vs. 16)');
    expect(r.messages.map(String)).toEqual(['small']);
    expect(srv.events).toEqual(['data small', 'cancelled']);
  });

  it('a compressed message: UNIMPLEMENTED for an unsupported grpc-encoding, INTERNAL without one', async () => {
    const srv = await echoServer();
    const compressed = frameMessage(Buffer.from('zz'));
    compressed[0] = 1;
    const gz = await rawCall(connect(srv.port), ECHO, [compressed], { 'grpc-encoding': 'gzip' });
    expect(statusOf(gz)).toBe(GrpcStatus.UNIMPLEMENTED);
    expect(gz.headers['grpc-accept-encoding']).toBe('identity');
    const none = await rawCall(connect(srv.port), ECHO, [compressed]);
    expect(statusOf(none)).toBe(GrpcStatus.INTERNAL);
    expect(srv.events.filter((e) => e.startsWith('data'))).toHaveLength(0);
  });

  it('a stream that ends inside a message: INTERNAL', async () => {
    const srv = await echoServer();
    const r = await rawCall(connect(srv.port), ECHO, [frameMessage(Buffer.from('abcdef')).subarray(0, 7)]);
    expect(statusOf(r)).toBe(GrpcStatus.INTERNAL);
    expect(srv.events).toEqual(['cancelled']);
  });

  it('grpc-timeout: DEADLINE_EXCEEDED when it passes, the handler cancelled; a malformed one INTERNAL', async () => {
    const srv = await echoServer();
    const session = connect(srv.port);
    const req = session.request({
      ':method': 'POST',
      ':path': ECHO,
      'content-type': 'application/grpc',
      'grpc-timeout': '100m',
    });
    req.write(frameMessage(Buffer.from('hi')));
    const trailers = await new Promise<http2.IncomingHttpHeaders>((resolve) => req.on('trailers', resolve));
    req.resume();
    expect(trailers['grpc-status']).toBe(String(GrpcStatus.DEADLINE_EXCEEDED));
    await new Promise((r) => setImmediate(r));
    expect(srv.events).toEqual(['data hi', 'cancelled']);
    req.close();
    const bad = await rawCall(connect(srv.port), ECHO, [], { 'grpc-timeout': 'soon' });
    expect(statusOf(bad)).toBe(GrpcStatus.INTERNAL);
  });

  it('cancellation mid-body (RST_STREAM inside a message): cancelled once, no message, no end', async () => {
    const srv = await echoServer();
    const session = connect(srv.port);
    const req = session.request({ ':method': 'POST', ':path': ECHO, 'content-type': 'application/grpc' });
    req.on('error', () => undefined);
    req.write(frameMessage(Buffer.alloc(1000, 0x62)).subarray(0, 300));
    await new Promise((r) => setTimeout(r, 50));
    req.close(http2.constants.NGHTTP2_CANCEL);
    await new Promise((r) => setTimeout(r, 100));
    expect(srv.events).toEqual(['cancelled']);
    // Writes after the cancellation are dropped, their callback still called.
    let written = false;
    expect(srv.calls[0]!.write(Buffer.from('late'), () => (written = true))).toBe(false);
    expect(written).toBe(true);
  });

  it('grpc-js client: messages both ways, a clean end, status OK', async () => {
    const srv = await echoServer();
    const client = new grpc.Client(`127.0.0.1:${srv.port}`, grpc.credentials.createInsecure());
    cleanup.push(() => client.close());
    const call = client.makeBidiStreamRequest(
      ECHO,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    const got: string[] = [];
    call.on('data', (b: Buffer) => got.push(b.toString()));
    const status = new Promise<grpc.StatusObject>((r) => call.on('status', r));
    call.write(Buffer.alloc(100_000, 0x63));
    call.write(Buffer.from('two'));
    call.end();
    expect((await status).code).toBe(grpc.status.OK);
    expect(got.map((g) => g.length)).toEqual([100_000, 3]);
  });

  it('drain: GOAWAY stops new streams, an open stream finishes, then the callback', async () => {
    const srv = await echoServer();
    const session = connect(srv.port);
    const req = session.request({ ':method': 'POST', ':path': ECHO, 'content-type': 'application/grpc' });
    const back: Buffer[] = [];
    req.on('data', (d: Buffer) => back.push(d));
    const trailers = new Promise<http2.IncomingHttpHeaders>((r) => req.on('trailers', r));
    req.write(frameMessage(Buffer.from('before')));
    await new Promise((r) => setTimeout(r, 50));
    let drained = false;
    const goaway = new Promise((r) => session.once('goaway', r));
    srv.server.tryShutdown(() => (drained = true));
    await goaway;
    req.write(frameMessage(Buffer.from('after')));
    await new Promise((r) => setTimeout(r, 50));
    expect(drained).toBe(false);
    req.end();
    expect((await trailers)['grpc-status']).toBe('0');
    await new Promise((r) => setTimeout(r, 100));
    expect(drained).toBe(true);
    expect(srv.events).toEqual(['data before', 'data after', 'end', 'cancelled']);
  });
});

describe('lean transport: ExtProcService on it', () => {
  async function leanEpp() {
    const { director, service, inFlight } = await memoryExtProcService();
    const server = new LeanGrpcServer({
      maxReceiveMessageBytes: 4 << 20,
      keepaliveTimeMs: 0,
      keepaliveTimeoutMs: 0,
    });
    service.addToLean(server);
    const port = await server.listen(0, '127.0.0.1');
    cleanup.push(() => server.forceShutdown());
    return { port, service, director, inFlight };
  }

  const codec = processCodec();
  const headers = (eos: boolean): ProcessingRequest => ({
    request_headers: {
      headers: {
        headers: [
          { key: ':method', raw_value: Buffer.from('POST') },
          { key: ':path', raw_value: Buffer.from('/v1/completions') },
          { key: 'content-type', raw_value: Buffer.from('application/json') },
        ],
      },
      end_of_stream: eos,
    },
    protocol_config: {
      request_body_mode: 'FULL_DUPLEX_STREAMED',
      response_body_mode: 'FULL_DUPLEX_STREAMED',
    },
  });
  const body = (b: Buffer, eos: boolean): ProcessingRequest => ({
    request_body: { body: b, end_of_stream: eos },
  });

  it('the whole request framed into one DATA frame and byte by byte gives the same routed reply', async () => {
    const epp = await leanEpp();
    const json = Buffer.from(JSON.stringify({ model: 'm', prompt: 'hello there', max_tokens: 4 }));
    const wire = Buffer.concat(
      [headers(false), body(json.subarray(0, 10), false), body(json.subarray(10), true)].map((m) =>
        frameMessage(codec.encodeRequest(m)),
      ),
    );
    const decode = (r: RawResult) =>
      r.messages.map((m) => codec.decodeResponse(m) as Record<string, unknown>);
    // Half-closing at once ends the exchange after the request phase (the pick is released at the end).
    const whole = await rawCall(connect(epp.port), PROCESS, [wire]);
    const bytes = await rawCall(
      connect(epp.port),
      PROCESS,
      Array.from({ length: wire.length }, (_, i) => wire.subarray(i, i + 1)),
    );
    for (const r of [whole, bytes]) {
      expect(statusOf(r)).toBe(GrpcStatus.OK);
      const replies = decode(r);
      expect(replies[0]!.response).toBe('request_headers');
      expect(JSON.stringify(replies[0])).toContain('10.0.0.1:8000');
      expect(replies.at(-1)!.response).toBe('request_body');
    }
    expect(decode(whole).length).toBe(decode(bytes).length);
    expect(await epp.inFlight()).toBe(0);
  });

  it('concurrent exchanges keep every byte: pooled bodies written without a copy are not reused early', async () => {
    const epp = await leanEpp();
    const client = new ExtProcClient({ target: `127.0.0.1:${epp.port}` });
    cleanup.push(() => client.close());
    const sizes = [70_000, 220_000, 5_000, 600_000];
    let bad = 0;
    await Promise.all(
      Array.from({ length: 24 }, async (_, w) => {
        for (let i = 0; i < 3; i++) {
          const text = `${w}-${i} `.padEnd(sizes[(w + i) % sizes.length]!, 'abcdefghij');
          const body = Buffer.from(JSON.stringify({ model: 'm', prompt: text, max_tokens: 1 }));
          const pieces: Buffer[] = [];
          for (let o = 0; o < body.length; o += 16_384) pieces.push(body.subarray(o, o + 16_384));
          const ex = client.open();
          const v = await ex.sendRequest({
            headers: [
              [':method', 'POST'],
              [':path', '/v1/completions'],
              ['content-type', 'application/json'],
            ],
            body: pieces,
          });
          if (v.kind !== 'continue' || !v.body.equals(body)) bad++;
          await ex.sendResponseHeaders([[':status', '200']]);
          const resp = Buffer.alloc(9000 + i, 0x30 + (w % 10));
          const got: Buffer[] = [];
          for await (const c of ex.streamResponseBody([resp])) got.push(c);
          if (!Buffer.concat(got).equals(resp)) bad++;
          ex.end();
          await ex.done;
        }
      }),
    );
    expect(bad).toBe(0);
    expect(await epp.inFlight()).toBe(0);
  }, 30_000);

  it('a client cancellation after the pick releases the charge, as under grpc-js', async () => {
    const epp = await leanEpp();
    const client = new ExtProcClient({ target: `127.0.0.1:${epp.port}` });
    cleanup.push(() => client.close());
    const ex = client.open();
    ex.done.catch(() => undefined);
    const v = await ex.sendRequest({
      headers: [
        [':method', 'POST'],
        [':path', '/v1/completions'],
        ['content-type', 'application/json'],
      ],
      body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'p', stream: true })),
    });
    expect(v.kind).toBe('continue');
    expect(await epp.inFlight()).toBe(1);
    expect(epp.service.openStreams).toBe(1);
    ex.cancel(); // RST_STREAM(CANCEL), as Envoy when its downstream goes away
    const end = Date.now() + 2000;
    while (Date.now() < end && (await epp.inFlight()) > 0) await new Promise((r) => setTimeout(r, 20));
    expect(await epp.inFlight()).toBe(0);
    expect(epp.director.openPicks).toBe(0);
    expect(epp.service.openStreams).toBe(0);
  });
});
