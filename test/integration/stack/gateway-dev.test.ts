// The real `hermes-router gateway-dev` process against an in-test ext_proc
// server that plays the EPP's FULL_DUPLEX_STREAMED part, and a fake model
// server: header and body mutations, immediate responses, fallbacks, the
// served-endpoint metadata and SSE passing through without being held back.
import * as grpc from '@grpc/grpc-js';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extProcServiceDefinition } from '../../../src/extproc/proto.js';
import {
  fromStruct,
  headerRecord,
  setHeader,
  toStruct,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../../../src/extproc/messages.js';
import { freePort } from '../../helpers/ports.js';
import { spawnFn, stopAllSpawned } from '../../helpers/spawn.js';

interface UpSeen {
  headers: IncomingMessage['headers'];
  body: string;
  path: string;
}

const served: string[] = [];
const responseChunks: number[] = [];

/** The EPP side of one stream, as GIE's handler behaves in FULL_DUPLEX_STREAMED. */
function fakeEpp(call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>): void {
  let reqHeaders: Record<string, string> = {};
  const body: Buffer[] = [];
  call.on('data', (m: ProcessingRequest) => {
    if (m.request === 'request_headers') {
      reqHeaders = headerRecord(m.request_headers!.headers);
      if (m.request_headers!.end_of_stream) {
        call.write({ immediate_response: { status: { code: 405 }, body: Buffer.from('no body') } });
        call.end();
      }
    } else if (m.request === 'request_body') {
      body.push(m.request_body!.body ?? Buffer.alloc(0));
      if (!m.request_body!.end_of_stream) return;
      if (reqHeaders['x-test-action'] === 'immediate') {
        call.write({
          immediate_response: {
            status: { code: 429 },
            body: Buffer.from('inference error: ResourceExhausted - busy'),
            details: 'busy',
          },
        });
        call.end();
        return;
      }
      const parsed = JSON.parse(Buffer.concat(body).toString()) as Record<string, unknown>;
      parsed.model = 'target-model';
      const out = Buffer.from(JSON.stringify(parsed));
      const dest = reqHeaders['x-test-dest']!;
      call.write({
        request_headers: {
          response: {
            clear_route_cache: true,
            header_mutation: {
              set_headers: [
                setHeader('x-gateway-destination-endpoint', dest),
                setHeader('content-length', String(out.length)),
                setHeader('x-picked-by', 'fake-epp'),
              ],
              remove_headers: ['x-remove-me'],
            },
          },
        },
        dynamic_metadata: toStruct({ 'envoy.lb': { 'x-gateway-destination-endpoint': dest } }),
      });
      call.write({
        request_body: {
          response: { body_mutation: { streamed_response: { body: out, end_of_stream: true } } },
        },
      });
    } else if (m.request === 'response_headers') {
      const meta = fromStruct(m.metadata_context?.filter_metadata?.['envoy.lb']);
      served.push(String(meta['x-gateway-destination-endpoint-served']));
      call.write({
        response_headers: {
          response: {
            header_mutation: {
              set_headers: [
                setHeader('x-went-into-resp-headers', 'true'),
                setHeader('x-served', String(meta['x-gateway-destination-endpoint-served'])),
              ],
            },
          },
        },
      });
      if (m.response_headers!.end_of_stream) call.end();
    } else if (m.request === 'response_body') {
      const b = m.response_body!.body ?? Buffer.alloc(0);
      responseChunks.push(b.length);
      const text = b.toString().replaceAll('"model":"target-model"', '"model":"client-model"');
      call.write({
        response_body: {
          response: {
            body_mutation: {
              streamed_response: {
                body: Buffer.from(text),
                end_of_stream: m.response_body!.end_of_stream ?? false,
              },
            },
          },
        },
      });
      if (m.response_body!.end_of_stream) call.end();
    }
  });
  call.on('error', () => undefined);
}

describe('gateway-dev', () => {
  let grpcServer: grpc.Server;
  let upstream: Server;
  let upPort: number;
  let deadPort: number;
  let gw: string;
  const seen: UpSeen[] = [];

  beforeAll(async () => {
    grpcServer = new grpc.Server();
    grpcServer.addService(extProcServiceDefinition(), { Process: fakeEpp });
    const eppPort = await new Promise<number>((resolve, reject) =>
      grpcServer.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    upstream = createServer((req, res) => {
      let raw = '';
      req.on('data', (c) => (raw += c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body: raw, path: req.url! });
        const body = JSON.parse(raw) as { stream?: boolean };
        if (body.stream) {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write('data: {"model":"target-model","n":1}\n\n');
          // The second event comes much later: the first must reach the client before it.
          setTimeout(() => res.end('data: {"model":"target-model","n":2}\n\ndata: [DONE]\n\n'), 700);
        } else {
          res.writeHead(200, { 'content-type': 'application/json', 'x-upstream-port': String(upPort) });
          res.end(JSON.stringify({ object: 'chat.completion', model: 'target-model', echo: body }));
        }
      });
    });
    upPort = await freePort();
    await new Promise<void>((r) => upstream.listen(upPort, '127.0.0.1', () => r()));
    deadPort = await freePort();
    const port = await freePort();
    gw = `http://127.0.0.1:${port}`;
    await spawnFn(
      'gateway-dev',
      [
        '--port',
        String(port),
        '--epp',
        `127.0.0.1:${eppPort}`,
        '--connect-timeout',
        '1s',
        '--epp-timeout',
        '3s',
      ],
      { ready: { http: `${gw}/_gateway/healthz` }, readyTimeoutMs: 15_000 },
    );
  });

  afterAll(async () => {
    await stopAllSpawned();
    grpcServer?.forceShutdown();
    upstream?.close();
  });

  const post = (body: unknown, headers: Record<string, string>) =>
    fetch(`${gw}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('forwards the mutated request to the chosen endpoint and the response through the EPP', async () => {
    const r = await post(
      { model: 'client-model', messages: [{ role: 'user', content: 'hi' }] },
      {
        'x-test-dest': `127.0.0.1:${upPort}`,
        'x-remove-me': '1',
        'x-gateway-destination-endpoint': '10.0.0.1:1',
      },
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('x-went-into-resp-headers')).toBe('true');
    expect(r.headers.get('x-served')).toBe(`127.0.0.1:${upPort}`);
    // The EPP rewrote the model on the way in and back on the way out.
    const out = (await r.json()) as { model: string };
    expect(out.model).toBe('client-model');
    const up = seen.at(-1)!;
    expect((JSON.parse(up.body) as { model: string }).model).toBe('target-model');
    expect(up.headers['x-picked-by']).toBe('fake-epp');
    expect(up.headers['x-remove-me']).toBeUndefined();
    expect(up.headers['x-request-id']).toMatch(/[0-9a-f-]{36}/);
    expect(up.headers['x-gateway-destination-endpoint']).toBe(`127.0.0.1:${upPort}`);
    expect(Number(up.headers['content-length'])).toBe(Buffer.byteLength(up.body));
    expect(up.path).toBe('/v1/chat/completions');
    expect(served.at(-1)).toBe(`127.0.0.1:${upPort}`);
  });

  it('accepts Expect: 100-continue (curl sends it for bodies over 1 KB) without forwarding it', async () => {
    const body = JSON.stringify({
      model: 'client-model',
      messages: [{ role: 'user', content: 'x'.repeat(4000) }],
    });
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${gw}/v1/chat/completions`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          expect: '100-continue',
          'x-test-dest': `127.0.0.1:${upPort}`,
        },
      });
      req.on('continue', () => req.end(body));
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    expect(status).toBe(200);
    expect(seen.at(-1)!.headers.expect).toBeUndefined();
  });

  it('tries the fallback when the primary endpoint refuses connections', async () => {
    const r = await post(
      { model: 'm', messages: [{ role: 'user', content: 'x' }] },
      { 'x-test-dest': `127.0.0.1:${deadPort},127.0.0.1:${upPort}` },
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('x-served')).toBe(`127.0.0.1:${upPort}`);
    const stats = (await (await fetch(`${gw}/_gateway/stats`)).json()) as {
      fallbacks: number;
      upstreamFailures: Record<string, number>;
    };
    expect(stats.fallbacks).toBeGreaterThanOrEqual(1);
    expect(stats.upstreamFailures[`127.0.0.1:${deadPort}`]).toBeGreaterThanOrEqual(1);
  });

  it('answers 503 with an OpenAI error when no endpoint is reachable', async () => {
    const r = await post(
      { model: 'm', messages: [{ role: 'user', content: 'x' }] },
      { 'x-test-dest': `127.0.0.1:${deadPort}` },
    );
    expect(r.status).toBe(503);
    expect(((await r.json()) as { error: { type: string } }).error.type).toBe('server_error');
  });

  it('returns the EPP immediate response to the client', async () => {
    const r = await post({ model: 'm', messages: [] }, { 'x-test-action': 'immediate' });
    expect(r.status).toBe(429);
    expect(await r.text()).toBe('inference error: ResourceExhausted - busy');
  });

  it('streams SSE events to the client as they come, through the EPP', async () => {
    const t0 = Date.now();
    const r = await post(
      { model: 'client-model', stream: true, messages: [{ role: 'user', content: 'x' }] },
      { 'x-test-dest': `127.0.0.1:${upPort}` },
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    const reader = r.body!.getReader();
    const first = await reader.read();
    const firstAt = Date.now() - t0;
    expect(Buffer.from(first.value!).toString()).toContain('"model":"client-model","n":1');
    expect(firstAt).toBeLessThan(600);
    let rest = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += Buffer.from(value).toString();
    }
    expect(rest).toContain('"model":"client-model","n":2');
    expect(rest).toContain('data: [DONE]');
  });

  it('answers 500 when the EPP is unreachable', async () => {
    const port = await freePort();
    const proc = await spawnFn(
      'gateway-dev',
      ['--port', String(port), '--epp', `127.0.0.1:${deadPort}`, '--epp-timeout', '2s'],
      {
        name: 'gw-no-epp',
        ready: { http: `http://127.0.0.1:${port}/_gateway/healthz` },
        readyTimeoutMs: 15_000,
      },
    );
    const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'm', prompt: 'x' }),
    });
    expect([500, 504]).toContain(r.status);
    expect(((await r.json()) as { error: { message: string } }).error.message).toContain('ext_proc');
    await proc.stop();
  });
});
