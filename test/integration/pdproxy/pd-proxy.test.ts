// The real `hermes-router pd-proxy` process against recording fake prefill
// and decode servers: the P/D flow bodies, header validation (400), round
// robin when the EPP names no pods, and unreachable pods (502).
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';
import { spawnFn, stopAllSpawned } from '../../helpers/spawn.js';

interface Seen {
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
}

interface Fake {
  port: number;
  id: string;
  seen: Seen[];
  server: Server;
}

async function fakePod(role: 'prefill' | 'decode', port: number): Promise<Fake> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    let raw = '';
    req.on('data', (c) => (raw += c));
    req.on('end', () => {
      const body = JSON.parse(raw) as Record<string, unknown>;
      seen.push({ path: req.url!, headers: req.headers, body });
      if (role === 'prefill') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'p1',
            choices: [{ text: 'x' }],
            kv_transfer_params: {
              do_remote_prefill: true,
              do_remote_decode: false,
              remote_engine_id: `engine-${port}`,
              remote_block_ids: [1, 2],
              remote_host: '127.0.0.1',
              remote_port: port,
            },
          }),
        );
        return;
      }
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'x-upstream': 'decode' });
        res.write('data: {"choices":[{"delta":{"content":"hel"}}]}\n\n');
        setTimeout(() => {
          res.write('data: {"choices":[{"delta":{"content":"lo"}}]}\n\n');
          res.end('data: [DONE]\n\n');
        }, 20);
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'chat.completion', decodedBy: port, kv: body.kv_transfer_params }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  return { port, id: `127.0.0.1:${port}`, seen, server };
}

const P = 'x-openfuyao-prefill-pod-address-port';
const D = 'x-openfuyao-decode-pod-address-port';

describe('pd-proxy', () => {
  let prefillA: Fake, prefillB: Fake, decodeA: Fake;
  let deadPort: number;
  let url: string;

  beforeAll(async () => {
    prefillA = await fakePod('prefill', await freePort());
    prefillB = await fakePod('prefill', await freePort());
    decodeA = await fakePod('decode', await freePort());
    deadPort = await freePort();
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    await spawnFn(
      'pd-proxy',
      [
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--served-headers',
        '--prefill',
        `${prefillA.id},${prefillB.id}`,
        '--decode',
        `${decodeA.id},127.0.0.1:${deadPort}`,
        '--connect-timeout',
        '1s',
        '--timeout',
        '5s',
      ],
      { ready: { http: `${url}/health` }, readyTimeoutMs: 15_000 },
    );
  });

  afterAll(async () => {
    await stopAllSpawned();
    for (const f of [prefillA, prefillB, decodeA]) f?.server.close();
  });

  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('runs the prefill with max_tokens 1 and the decode with the returned kv_transfer_params', async () => {
    const body = {
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 50,
      max_completion_tokens: 50,
      stream: false,
    };
    const r = await post('/v1/chat/completions', body, {
      [P]: prefillB.id,
      [D]: decodeA.id,
      'x-request-id': 'r-1',
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-hermes-pd-prefill')).toBe(prefillB.id);
    expect(r.headers.get('x-hermes-pd-decode')).toBe(decodeA.id);
    const out = (await r.json()) as { decodedBy: number; kv: { remote_engine_id: string } };
    expect(out.decodedBy).toBe(decodeA.port);
    expect(out.kv.remote_engine_id).toBe(`engine-${prefillB.port}`);

    const p = prefillB.seen.at(-1)!;
    expect(p.path).toBe('/v1/chat/completions');
    expect(p.body).toMatchObject({ max_tokens: 1, max_completion_tokens: 1, stream: false, model: 'm' });
    expect(p.body.kv_transfer_params).toEqual({
      do_remote_decode: true,
      do_remote_prefill: false,
      remote_engine_id: null,
      remote_block_ids: null,
      remote_host: null,
      remote_port: null,
    });
    expect(p.headers['x-request-id']).toBe('r-1');
    expect(p.headers[P]).toBeUndefined();
    const d = decodeA.seen.at(-1)!;
    expect(d.body).toMatchObject({ max_tokens: 50, max_completion_tokens: 50, stream: false });
    expect((d.body.kv_transfer_params as { remote_block_ids: number[] }).remote_block_ids).toEqual([1, 2]);
  });

  it('streams the decode pod SSE answer back unchanged', async () => {
    const r = await post(
      '/v1/completions',
      { model: 'm', prompt: 'hello', stream: true, stream_options: { include_usage: true } },
      { [P]: prefillA.id, [D]: decodeA.id },
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/event-stream');
    expect(r.headers.get('x-upstream')).toBe('decode');
    expect(await r.text()).toBe(
      'data: {"choices":[{"delta":{"content":"hel"}}]}\n\ndata: {"choices":[{"delta":{"content":"lo"}}]}\n\ndata: [DONE]\n\n',
    );
    const p = prefillA.seen.at(-1)!;
    expect(p.body.stream).toBe(false);
    expect(p.body.stream_options).toBeUndefined();
    expect(decodeA.seen.at(-1)!.body).toMatchObject({
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('chooses pods round robin when the EPP named none', async () => {
    const before = [prefillA.seen.length, prefillB.seen.length];
    // Decode round robin alternates with a dead pod, so name the decode pod; prefill is left to the proxy.
    for (let i = 0; i < 4; i++) {
      const r = await post('/v1/completions', { model: 'm', prompt: 'p' }, { [D]: decodeA.id });
      expect(r.status).toBe(200);
    }
    expect(prefillA.seen.length - before[0]!).toBe(2);
    expect(prefillB.seen.length - before[1]!).toBe(2);
  });

  it.each([
    ['not ip:port', { [P]: 'nonsense', [D]: '127.0.0.1:1' }, 'must be ip:port'],
    ['an unknown prefill pod', { [P]: '10.9.9.9:8000' }, 'not a prefill pod of this PD group'],
    ['a decode pod as prefill', { [P]: 'DECODE' }, 'not a prefill pod'],
    ['a prefill pod as decode', { [D]: 'PREFILL' }, 'not a decode pod'],
    ['an empty header', { [P]: '' }, 'must be ip:port'],
  ])('answers 400 for a header naming %s, without connecting anywhere', async (_, hdrs, msg) => {
    const before = prefillA.seen.length + prefillB.seen.length + decodeA.seen.length;
    const h: Record<string, string> = {};
    for (const [k, v] of Object.entries(hdrs))
      h[k] = v === 'DECODE' ? decodeA.id : v === 'PREFILL' ? prefillA.id : v;
    const r = await post('/v1/completions', { model: 'm', prompt: 'p' }, h);
    expect(r.status).toBe(400);
    const err = (await r.json()) as { error: { message: string; type: string; code: number } };
    expect(err.error.type).toBe('invalid_request_error');
    expect(err.error.message).toContain(msg);
    expect(prefillA.seen.length + prefillB.seen.length + decodeA.seen.length).toBe(before);
  });

  it('answers 502 with an OpenAI error when the decode pod is unreachable', async () => {
    const r = await post(
      '/v1/completions',
      { model: 'm', prompt: 'p' },
      { [P]: prefillA.id, [D]: `127.0.0.1:${deadPort}` },
    );
    expect(r.status).toBe(502);
    const err = (await r.json()) as { error: { message: string; type: string } };
    expect(err.error.type).toBe('server_error');
    expect(err.error.message).toContain(`decode pod 127.0.0.1:${deadPort} unreachable`);
  });

  it('answers 400 for a body that is not JSON and 404 for other paths', async () => {
    const r = await fetch(`${url}/v1/completions`, { method: 'POST', body: '{nope' });
    expect(r.status).toBe(400);
    expect((await fetch(`${url}/v1/embeddings`, { method: 'POST', body: '{}' })).status).toBe(404);
  });
});

describe('pd-proxy with an unreachable prefill pod', () => {
  it('answers 502', async () => {
    const dead = await freePort();
    const port = await freePort();
    const proc = await spawnFn(
      'pd-proxy',
      [
        '--port',
        String(port),
        '--host',
        '127.0.0.1',
        '--prefill',
        `127.0.0.1:${dead}`,
        '--decode',
        '127.0.0.1:1',
      ],
      { ready: { http: `http://127.0.0.1:${port}/health` }, readyTimeoutMs: 15_000 },
    );
    try {
      const r = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', prompt: 'p' }),
      });
      expect(r.status).toBe(502);
      expect(((await r.json()) as { error: { message: string } }).error.message).toContain(
        `prefill pod 127.0.0.1:${dead} unreachable`,
      );
      // Without --served-headers, pod addresses stay internal.
      expect(r.headers.get('x-hermes-pd-prefill')).toBeNull();
      expect(r.headers.get('x-hermes-pd-decode')).toBeNull();
    } finally {
      await proc.stop();
    }
  });
});
