// Bad input against a spawned `hermes-router pd-proxy`: random and hostile
// requests (bad JSON, wrong types, deep nesting, huge bodies, odd methods and
// request targets) carrying forged PD headers (other hosts and ports, IPv6,
// spaces, lists, URLs, unicode, duplicates). The group is two fake prefill and
// two fake decode servers; one more fake "outside" server is what a forged
// header would reach and must never see a connection. Each answer must be a
// proper PD answer or a 4xx with an OpenAI-style error (the fakes are
// healthy, so a 5xx means the proxy blamed a pod for a client's mistake),
// the process must stay up, and its RSS must stay bounded.
import fc from 'fast-check';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect as netConnect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';

const PREFILL_HEADER = 'x-openfuyao-prefill-pod-address-port';
const DECODE_HEADER = 'x-openfuyao-decode-pod-address-port';
const RUN = { numRuns: 400, interruptAfterTimeLimit: 12_000, markInterruptAsFailure: false } as const;
const RSS_BUDGET = 120 * 1024 * 1024;

interface Fake {
  role: 'prefill' | 'decode' | 'outside';
  port: number;
  id: string;
  server: Server;
  connections: number;
  requests: number;
  /** Bodies that did not have the shape the P/D flow sends this role. */
  badShapes: string[];
}

function fakeServer(role: Fake['role'], port: number): Promise<Fake> {
  const fake: Fake = {
    role,
    port,
    id: `127.0.0.1:${port}`,
    server: undefined!,
    connections: 0,
    requests: 0,
    badShapes: [],
  };
  fake.server = createServer((req, res) => {
    fake.requests++;
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(Buffer.concat(parts).toString('utf8')) as Record<string, unknown>;
      } catch {
        fake.badShapes.push('not JSON');
      }
      const kv = body.kv_transfer_params as Record<string, unknown> | undefined;
      if (role === 'prefill') {
        if (kv?.do_remote_decode !== true || body.max_tokens !== 1 || body.stream !== false)
          fake.badShapes.push(JSON.stringify(body).slice(0, 200));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            id: 'p',
            choices: [{ text: 'x' }],
            kv_transfer_params: {
              do_remote_prefill: true,
              do_remote_decode: false,
              remote_engine_id: `engine-${port}`,
              remote_block_ids: [1],
              remote_host: '127.0.0.1',
              remote_port: port,
            },
          }),
        );
        return;
      }
      if (kv?.remote_engine_id === undefined) fake.badShapes.push(JSON.stringify(body).slice(0, 200));
      if (body.stream === true) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"choices":[{"delta":{"content":"hi"}}]}\n\n');
        res.end('data: [DONE]\n\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'text_completion', decodedBy: fake.id, choices: [{ text: 'hi' }] }));
      }
    });
  });
  fake.server.on('connection', () => fake.connections++);
  return new Promise((resolve) => fake.server.listen(port, '127.0.0.1', () => resolve(fake)));
}

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * One request written byte for byte on a socket (node:http would refuse
 * most hostile header values), `connection: close`, read to the end.
 */
function rawRequest(port: number, head: string, body: Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const sock = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms to ${JSON.stringify(head.slice(0, 200))}`));
    }, timeoutMs);
    sock.on('data', (d: Buffer) => chunks.push(d));
    // The server may answer (413, 400) and close while the body is still going out.
    sock.on('error', () => undefined);
    sock.on('close', () => {
      clearTimeout(timer);
      try {
        resolve(parseAnswer(Buffer.concat(chunks)));
      } catch (e) {
        reject(new Error(`${(e as Error).message} for ${JSON.stringify(head.slice(0, 200))}`));
      }
    });
    sock.write(Buffer.concat([Buffer.from(head, 'utf8'), body]));
  });
}

function parseAnswer(raw: Buffer): RawAnswer {
  // Interim answers (100 Continue) come before the final one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(raw.subarray(0, 16).toString('latin1'))) {
    const end = raw.indexOf('\r\n\r\n');
    if (end < 0) break;
    raw = raw.subarray(end + 4);
  }
  const sep = raw.indexOf('\r\n\r\n');
  if (sep < 0) throw new Error(`no HTTP answer (got ${raw.length} bytes)`);
  const lines = raw.subarray(0, sep).toString('latin1').split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3}) /.exec(lines[0]!);
  if (!m) throw new Error(`bad status line ${JSON.stringify(lines[0])}`);
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = raw.subarray(sep + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    const out: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = body.indexOf('\r\n', at);
      if (eol < 0) throw new Error('truncated chunked body');
      const size = parseInt(body.subarray(at, eol).toString('latin1'), 16);
      if (size === 0) break;
      out.push(body.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
    body = Buffer.concat(out);
  } else if (headers['content-length'] !== undefined) {
    const n = Number(headers['content-length']);
    if (body.length !== n) throw new Error(`body of ${body.length} bytes, content-length ${n}`);
  }
  return { status: Number(m[1]), headers, body: body.toString('utf8') };
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
let proxy: { child: ChildProcess; output: () => string };
let proxyPort: number;
let prefills: Fake[];
let decodes: Fake[];
let outside: Fake;

beforeAll(async () => {
  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  prefills = await Promise.all([fakeServer('prefill', ports[0]!), fakeServer('prefill', ports[1]!)]);
  decodes = await Promise.all([fakeServer('decode', ports[2]!), fakeServer('decode', ports[3]!)]);
  outside = await fakeServer('outside', ports[4]!);
  proxyPort = ports[5]!;
  const child = spawn(
    process.execPath,
    [
      join(repoRoot, 'bin', 'hermes-router.js'),
      'pd-proxy',
      '--host',
      '127.0.0.1',
      '--port',
      String(proxyPort),
      '--served-headers',
      '--prefill',
      prefills.map((f) => f.id).join(','),
      '--decode',
      decodes.map((f) => f.id).join(','),
      '--timeout',
      '5s',
      '--connect-timeout',
      '1s',
      '--log-level',
      'error',
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-100_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  proxy = { child, output: () => out };
  const end = Date.now() + 15_000;
  for (;;) {
    const up = await rawRequest(
      proxyPort,
      'GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
      Buffer.alloc(0),
      1_000,
    )
      .then((a) => a.status === 200)
      .catch(() => false);
    if (up) break;
    if (child.exitCode !== null || Date.now() > end) throw new Error(`pd-proxy did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
});

afterAll(async () => {
  const child = proxy?.child;
  if (child && child.exitCode === null && child.signalCode === null) {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
  await Promise.all(
    [...(prefills ?? []), ...(decodes ?? []), ...(outside ? [outside] : [])].map(
      (f) =>
        new Promise<void>((r) => {
          f.server.closeAllConnections();
          f.server.close(() => r());
        }),
    ),
  );
});

// ---------------------------------------------------------------------------
// Arbitraries

/** Header values naming something that is not a pod of that role in this group. */
function forgedValues(): fc.Arbitrary<string> {
  const o = () => outside.port;
  const p0 = () => prefills[0]!.port;
  const d0 = () => decodes[0]!.port;
  return fc.oneof(
    fc
      .constantFrom(
        ...[
          () => `127.0.0.1:${o()}`,
          () => `localhost:${o()}`,
          () => `[::1]:${o()}`,
          () => `[::ffff:127.0.0.1]:${p0()}`,
          () => `[::ffff:7f00:1]:${p0()}`,
          () => `0.0.0.0:${p0()}`,
          () => `127.1:${p0()}`,
          () => `2130706433:${p0()}`,
          () => `0x7f000001:${p0()}`,
          () => `127.0.0.2:${p0()}`,
          () => `127.0.0.1:0${p0()}`,
          () => `127.0.0.1:${p0() + 65536}`,
          () => `127.0.0.1:${o()}, 127.0.0.1:${p0()}`,
          () => `127.0.0.1:${p0()},127.0.0.1:${o()}`,
          () => `http://127.0.0.1:${o()}/`,
          () => `http://127.0.0.1:${p0()}@127.0.0.1:${o()}`,
          () => `127.0.0.1:${p0()}@127.0.0.1:${o()}`,
          () => `127.0.0.1:${p0()}/../127.0.0.1:${o()}`,
          () => `127.0.0.1 :${p0()}`,
          () => `127.0.0.1:${p0()} x`,
          () => `１２７.０.０.１:${p0()}`,
          () => `127.0.0.1:${p0()}\u0000`,
          () => `127.0.0.1：${p0()}`,
          () => `[::1]:${p0()}`,
          () => `127.0.0.1:${d0()}`, // a decode pod named as prefill (and the reverse below)
          () => `unix:/var/run/x.sock`,
          () => '',
          () => ' ',
        ].map((f) => ({ f })),
      )
      .map(({ f }) => f()),
    fc.string({ maxLength: 40 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 70_000 })).map(([h, p]) => `${h}:${p}`),
    fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 70_000 })).map(([h, p]) => `[${h}]:${p}`),
  );
}

/** What a client may put in one PD header: nothing, a real pod (maybe padded), or a forgery. */
function pdHeader(role: 'prefill' | 'decode'): fc.Arbitrary<string[] | undefined> {
  const pods = () => (role === 'prefill' ? prefills : decodes);
  const valid = fc
    .tuple(fc.nat(1), fc.constantFrom('', ' ', '\t'))
    .map(([i, pad]) => `${pad}${pods()[i]!.id}${pad}`);
  return fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 3 },
    { arbitrary: valid.map((v) => [v]), weight: 2 },
    { arbitrary: forgedValues().map((v) => [v]), weight: 4 },
    // Repeated header lines: Node joins them, which must never be a valid pod.
    { arbitrary: fc.tuple(valid, fc.oneof(valid, forgedValues())).map(([a, b]) => [a, b]), weight: 1 },
  );
}

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(-1, 0, 1e308, -1e308, 2 ** 53 + 1, '', '\u0000', 'NaN', true, null, [], {}),
);

const openAIBody: fc.Arbitrary<Record<string, unknown>> = fc.record(
  {
    model: fc.oneof(fc.constant('m'), anyValue),
    prompt: fc.oneof(fc.string({ maxLength: 200 }), anyValue),
    messages: fc.oneof(
      fc.array(
        fc.record({ role: fc.constantFrom('user', 'system'), content: fc.string({ maxLength: 80 }) }),
        {
          maxLength: 3,
        },
      ),
      anyValue,
    ),
    stream: fc.oneof(fc.boolean(), anyValue),
    max_tokens: fc.oneof(fc.integer({ min: -5, max: 100 }), anyValue),
    max_completion_tokens: anyValue,
    stream_options: anyValue,
    // A client trying to steer the KV transfer to the outside server.
    kv_transfer_params: fc.constant(null).map(() => ({
      remote_host: '127.0.0.1',
      remote_port: outside.port,
      do_remote_prefill: true,
    })),
    __proto__: fc.constant({ polluted: true }),
  },
  { requiredKeys: [] },
);

const body: fc.Arbitrary<Buffer> = fc.oneof(
  { arbitrary: openAIBody.map((b) => Buffer.from(JSON.stringify(b))), weight: 6 },
  { arbitrary: fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')), weight: 2 },
  { arbitrary: fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)), weight: 1 },
  { arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), weight: 1 },
  {
    // Deep nesting: JSON.parse copes; re-serialising it must not become a 5xx.
    arbitrary: fc
      .integer({ min: 1_000, max: 200_000 })
      .map((n) => Buffer.from(`{"model":"m","prompt":"x","extra":${'['.repeat(n)}${']'.repeat(n)}}`)),
    weight: 1,
  },
  {
    // Invalid UTF-8 inside a JSON string.
    arbitrary: fc.constant(
      Buffer.concat([
        Buffer.from('{"model":"m","prompt":"a'),
        Buffer.from([0xff, 0xc3, 0x28]),
        Buffer.from('"}'),
      ]),
    ),
    weight: 1,
  },
);

const target = fc.oneof(
  { arbitrary: fc.constantFrom('/v1/completions', '/v1/chat/completions'), weight: 8 },
  {
    arbitrary: fc.constantFrom(
      '/v1/completions?x=1',
      '/v1/completions?@127.0.0.1:OUT',
      '//127.0.0.1:OUT/v1/completions',
      'http://127.0.0.1:OUT/v1/completions',
      '/v1/completions#@127.0.0.1:OUT',
      '/v1/completions/../../x',
      '/v1/%2e%2e/completions',
      '/V1/COMPLETIONS',
      '*',
      '/health',
      '/stats',
    ),
    weight: 2,
  },
);

interface Case {
  method: string;
  target: string;
  prefill: string[] | undefined;
  decode: string[] | undefined;
  body: Buffer;
  chunked: boolean;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  method: fc.oneof(
    { arbitrary: fc.constant('POST'), weight: 9 },
    { arbitrary: fc.constantFrom('GET', 'PUT', 'DELETE', 'OPTIONS', 'PATCH'), weight: 1 },
  ),
  target,
  prefill: fc.constant(null).chain(() => pdHeader('prefill')),
  decode: fc.constant(null).chain(() => pdHeader('decode')),
  body,
  chunked: fc.boolean(),
});

function headOf(c: Case): string {
  const lines = [
    `${c.method} ${c.target.replaceAll('OUT', String(outside.port))} HTTP/1.1`,
    `host: 127.0.0.1:${proxyPort}`,
  ];
  lines.push('content-type: application/json', 'connection: close');
  lines.push(c.chunked ? 'transfer-encoding: chunked' : `content-length: ${c.body.length}`);
  for (const v of c.prefill ?? []) lines.push(`${PREFILL_HEADER}: ${v}`);
  for (const v of c.decode ?? []) lines.push(`${DECODE_HEADER}: ${v}`);
  return lines.join('\r\n') + '\r\n\r\n';
}

function framed(c: Case): Buffer {
  if (!c.chunked) return c.body;
  if (c.body.length === 0) return Buffer.from('0\r\n\r\n');
  const half = c.body.length >> 1;
  const parts = [c.body.subarray(0, half), c.body.subarray(half)].filter((p) => p.length > 0);
  return Buffer.concat([
    ...parts.flatMap((p) => [Buffer.from(`${p.length.toString(16)}\r\n`), p, Buffer.from('\r\n')]),
    Buffer.from('0\r\n\r\n'),
  ]);
}

function expectOpenAIError(a: RawAnswer, what: string): void {
  expect(a.headers['content-type'], what).toMatch(/application\/json/);
  const e = (JSON.parse(a.body) as { error?: Record<string, unknown> }).error;
  expect(e, what).toBeDefined();
  expect(typeof e!.message, what).toBe('string');
  expect(typeof e!.type, what).toBe('string');
}

const groupIds = (fakes: Fake[]) => new Set(fakes.map((f) => f.id));

describe('pd-proxy under hostile requests', () => {
  it('answers every request properly or with a 4xx OpenAI error, and only ever contacts its own pods', async () => {
    const rss0 = rssBytes(proxy.child.pid!);
    let answered = 0;
    const statuses = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const a = await rawRequest(proxyPort, headOf(c), framed(c));
        answered++;
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
        const what = `${a.status} ${a.body.slice(0, 300)} for ${headOf(c).slice(0, 400)}`;
        // Node answers some malformed requests itself (400 with no body).
        if (a.status === 400 && !a.headers['content-type']) return;
        if (a.status >= 400) {
          expect(a.status, what).toBeLessThan(500);
          expectOpenAIError(a, what);
          return;
        }
        expect(a.status, what).toBe(200);
        const bare = c.target.split('?', 1)[0]!;
        if (bare === '/health' || bare === '/stats') return;
        // A PD answer: served by pods of this group, the ones the headers named when valid.
        const p = a.headers['x-hermes-pd-prefill']!;
        const d = a.headers['x-hermes-pd-decode']!;
        expect(groupIds(prefills).has(p), what).toBe(true);
        expect(groupIds(decodes).has(d), what).toBe(true);
        if (c.prefill) expect(c.prefill.length === 1 && c.prefill[0]!.trim() === p, what).toBe(true);
        if (c.decode) expect(c.decode.length === 1 && c.decode[0]!.trim() === d, what).toBe(true);
        if (a.headers['content-type']?.includes('event-stream')) expect(a.body).toContain('data: [DONE]');
        else expect((JSON.parse(a.body) as { decodedBy: string }).decodedBy, what).toBe(d);
      }),
      RUN,
    );
    expect(answered).toBeGreaterThan(50);
    // Both outcomes were exercised: routed answers and client errors.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(5);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(5);
    expect(outside.connections).toBe(0);
    for (const f of [...prefills, ...decodes]) expect(f.badShapes, f.id).toEqual([]);
    expect(proxy.child.exitCode).toBeNull();
    const health = await rawRequest(
      proxyPort,
      `GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
      Buffer.alloc(0),
    );
    expect(health.status).toBe(200);
    expect(rssBytes(proxy.child.pid!) - rss0).toBeLessThan(RSS_BUDGET);
  }, 60_000);

  it('answers 4 concurrent 14 MB nested bodies with a 400 naming the bound, peak RSS +<150 MB (issue 17)', async () => {
    const depth = 7 * 1024 * 1024;
    const nested = Buffer.concat([
      Buffer.from('{"model":"m","prompt":"x","extra":'),
      Buffer.alloc(depth, '['),
      Buffer.alloc(depth, ']'),
      Buffer.from('}'),
    ]);
    const pid = proxy.child.pid!;
    const rss0 = rssBytes(pid);
    let peak = rss0;
    const timer = setInterval(() => (peak = Math.max(peak, rssBytes(pid))), 10);
    const head = `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${nested.length}\r\n\r\n`;
    const answers = await Promise.all([1, 2, 3, 4].map(() => rawRequest(proxyPort, head, nested, 30_000)));
    clearInterval(timer);
    for (const a of answers) {
      expect(a.status).toBe(400);
      expectOpenAIError(a, a.body);
      expect(a.body).toMatch(/nests deeper than 128 levels/);
    }
    expect(peak - rss0).toBeLessThan(150 * 1024 * 1024);
  }, 60_000);

  it('answers a body over the 32 MiB limit with a 413 OpenAI error, whether announced or streamed', async () => {
    const rss0 = rssBytes(proxy.child.pid!);
    const big = Buffer.alloc(33 * 1024 * 1024, 0x61);
    const before = prefills.reduce((n, f) => n + f.requests, 0);
    // Announced by content-length.
    const a = await rawRequest(
      proxyPort,
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: ${big.length}\r\n\r\n`,
      big,
      20_000,
    );
    expect(a.status).toBe(413);
    expectOpenAIError(a, a.body);
    // Streamed in chunks with no length.
    const chunked = Buffer.concat([
      Buffer.from(`${big.length.toString(16)}\r\n`),
      big,
      Buffer.from('\r\n0\r\n\r\n'),
    ]);
    const b = await rawRequest(
      proxyPort,
      `POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n`,
      chunked,
      20_000,
    );
    expect(b.status).toBe(413);
    expectOpenAIError(b, b.body);
    expect(prefills.reduce((n, f) => n + f.requests, 0)).toBe(before);
    expect(proxy.child.exitCode).toBeNull();
    expect(rssBytes(proxy.child.pid!) - rss0).toBeLessThan(RSS_BUDGET);
  }, 60_000);

  it('forwards ordinary client headers such as Expect: 100-continue without failing the request', async () => {
    const payload = Buffer.from(JSON.stringify({ model: 'm', prompt: 'x'.repeat(2_000) }));
    const a = await rawRequest(
      proxyPort,
      `POST /v1/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nconnection: close\r\nexpect: 100-continue\r\ncontent-length: ${payload.length}\r\n\r\n`,
      payload,
    );
    // Node sends "100 Continue" first (skipped by parseAnswer); the final answer follows it.
    expect(a.status, a.body).toBe(200);
    expect(a.headers['x-hermes-pd-prefill']).toBeDefined();
  });
});
