// Bad input over real HTTP against spawned processes: the cache-indexer's
// POST /match_sort and mock-vllm's OpenAI endpoints get random and hostile
// bodies (bad JSON, wrong types, missing fields, invalid UTF-8, huge and
// chunked bodies). Each answer must be a 4xx with an OpenAI-style error body
// (or a 2xx for a body that happens to be valid), the process must stay up,
// and its resident memory must stay bounded.
import fc from 'fast-check';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { spawnFn, stopAllSpawned, type SpawnedFn } from '../helpers/spawn.js';
import { weirdScalar, yamlDoc } from './arbitraries.js';

const RUN = { numRuns: 150, interruptAfterTimeLimit: 7_000, markInterruptAsFailure: false } as const;
/** RSS may grow by this much over a whole suite of hostile requests (GC slack, JIT, pools). */
const RSS_BUDGET = 120 * 1024 * 1024;

interface Answer {
  status: number;
  body: string;
  contentType: string;
}

/** One request with node:http (no client-side body checks, so any bytes and headers go out). */
function send(
  url: string,
  method: string,
  body: Buffer | string | undefined,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const length: Record<string, string> =
      body === undefined ? {} : { 'content-length': String(Buffer.byteLength(body)) };
    const req = httpRequest(
      url,
      {
        method,
        agent: false,
        headers: { 'content-type': 'application/json', ...length, ...headers },
        timeout: timeoutMs,
      },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(parts).toString('utf8'),
            contentType: String(res.headers['content-type'] ?? ''),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    // A server may answer (413) and close while the body is still going out.
    req.on('socket', (s) => s.on('error', () => undefined));
    if (body !== undefined) req.end(body);
    else req.end();
  });
}

function expectOpenAIError(a: Answer, what: string): void {
  expect(a.status, `${what}: ${a.body.slice(0, 300)}`).toBeGreaterThanOrEqual(400);
  expect(a.status, `${what}: ${a.body.slice(0, 300)}`).toBeLessThan(500);
  expect(a.contentType, `${what}: ${a.status} ${a.body.slice(0, 300)}`).toContain('application/json');
  const doc = JSON.parse(a.body) as { error?: { message?: unknown; type?: unknown; code?: unknown } };
  expect(typeof doc.error?.message).toBe('string');
  expect(typeof doc.error?.type).toBe('string');
  expect(doc.error?.code).toBe(a.status);
}

/** 2xx is fine (the body happened to be valid); otherwise a 4xx OpenAI error; never 5xx. */
function expectHandled(a: Answer, what: string): void {
  if (a.status >= 200 && a.status < 300) return;
  expectOpenAIError(a, what);
}

const anyJson = fc.oneof(weirdScalar, yamlDoc(3));
const badBytes = fc.uint8Array({ minLength: 1, maxLength: 200 }).map((b) => Buffer.from(b));

let indexer: SpawnedFn;
let vllm: SpawnedFn;
let indexerUrl = '';
let vllmUrl = '';

beforeAll(async () => {
  const [ip, kp, vp] = [await freePort(), await freePort(), await freePort()];
  indexerUrl = `http://127.0.0.1:${ip}`;
  vllmUrl = `http://127.0.0.1:${vp}`;
  [indexer, vllm] = await Promise.all([
    spawnFn(
      'cache-indexer',
      [
        '--host',
        '127.0.0.1',
        '--port',
        String(ip),
        '--kv-events-bind',
        `tcp://127.0.0.1:${kp}`,
        '--log-level',
        'warn',
      ],
      { ready: { http: `${indexerUrl}/healthz` } },
    ),
    spawnFn(
      'mock-vllm',
      [
        '--host',
        '127.0.0.1',
        '--port',
        String(vp),
        '--model',
        'm',
        '--time-scale',
        '1000',
        '--kv-cache-blocks',
        '256',
        '--default-max-tokens',
        '2',
        '--log-level',
        'warn',
      ],
      { ready: { http: `${vllmUrl}/health` } },
    ),
  ]);
});

afterAll(async () => {
  await stopAllSpawned();
});

describe('cache-indexer POST /match_sort under hostile input', () => {
  const valid = {
    model: 'm',
    prompt: 'hello world, this is a prompt',
    candidates: ['10.0.0.1:8000', '10.0.0.2:8000'],
  };

  it('a valid lookup answers 200 (baseline)', async () => {
    const a = await send(`${indexerUrl}/match_sort`, 'POST', JSON.stringify(valid));
    expect(a.status).toBe(200);
    expect((JSON.parse(a.body) as { results: unknown[] }).results).toHaveLength(2);
  });

  it('random text, bytes and JSON documents: 4xx OpenAI errors, never 5xx', async () => {
    const rss0 = indexer.rssBytes();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          badBytes,
          anyJson.map((d) => JSON.stringify(d) ?? 'null'),
        ),
        async (body) => {
          expectHandled(await send(`${indexerUrl}/match_sort`, 'POST', body), 'match_sort');
        },
      ),
      RUN,
    );
    expect(indexer.alive()).toBe(true);
    expect(indexer.rssBytes() - rss0).toBeLessThan(RSS_BUDGET);
  });

  it('each field of a valid lookup replaced by any type or removed: 4xx or 200', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('model', 'prompt', 'messages', 'token_ids', 'candidates'),
        fc.option(anyJson, { nil: undefined }),
        async (field, value) => {
          const body: Record<string, unknown> = { ...valid };
          if (value === undefined) delete body[field];
          else body[field] = value;
          expectHandled(
            await send(`${indexerUrl}/match_sort`, 'POST', JSON.stringify(body)),
            `match_sort ${field}`,
          );
        },
      ),
      RUN,
    );
  });

  it('huge bodies (declared or chunked), huge candidate lists and long prompts: bounded memory, process up', async () => {
    // One valid 8 MB prompt first: the heap a legitimate long lookup grows
    // (V8 keeps it as GC slack, ~50-60 MB) belongs to the baseline, so the
    // budget below measures what the hostile inputs add on top of it.
    const warm = await send(
      `${indexerUrl}/match_sort`,
      'POST',
      JSON.stringify({ ...valid, prompt: 'w'.repeat(8 * 1024 * 1024) }),
    );
    expect(warm.status).toBe(200);
    const rss0 = indexer.rssBytes();
    // 200 MB declared: refused before it is read.
    // The server answers 413 at once, unread, and closes. A client still
    // writing may see the reset before it reads the 413 (a client-side race),
    // so a reset is accepted here; memory is checked below either way.
    const declared = await send(
      `${indexerUrl}/match_sort`,
      'POST',
      Buffer.alloc(200 * 1024 * 1024, 0x61),
    ).catch((e: Error) => e);
    if (declared instanceof Error) expect(declared.message).toMatch(/ECONNRESET|EPIPE|socket hang up/);
    else expectOpenAIError(declared, 'declared 200 MB');
    // 64 MB chunked (no content-length): refused once the limit is crossed.
    const chunked = await new Promise<Answer>((resolve, reject) => {
      const req = httpRequest(
        `${indexerUrl}/match_sort`,
        { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } },
        (res) => {
          let b = '';
          res.on('data', (d: Buffer) => (b += d.toString()));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: b,
              contentType: String(res.headers['content-type']),
            }),
          );
        },
      );
      req.on('error', reject);
      req.on('socket', (s) => s.on('error', () => undefined));
      const block = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = () => {
        while (sent < 64) {
          sent++;
          if (!req.write(block)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    }).catch((e: Error) => ({ status: 413, body: '', contentType: `closed: ${e.message}` }));
    expect(chunked.status).toBe(413);
    expectOpenAIError(
      await send(
        `${indexerUrl}/match_sort`,
        'POST',
        JSON.stringify({
          ...valid,
          candidates: Array.from({ length: 20_000 }, (_, i) => `10.0.${i >> 8}.${i & 255}:8000`),
        }),
      ),
      'too many candidates',
    );
    const long = await send(
      `${indexerUrl}/match_sort`,
      'POST',
      JSON.stringify({ ...valid, prompt: 'p'.repeat(8 * 1024 * 1024) }),
    );
    expect(long.status).toBe(200);
    const deep = await send(
      `${indexerUrl}/match_sort`,
      'POST',
      `{"model":"m","candidates":["a:1"],"messages":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
    );
    expectOpenAIError(deep, 'deep nesting');
    expect(indexer.alive()).toBe(true);
    expect(indexer.rssBytes() - rss0).toBeLessThan(RSS_BUDGET);
    const h = await send(`${indexerUrl}/healthz`, 'GET', undefined);
    expect(h.status).toBe(200);
  });

  it('wrong methods and unknown paths: 404 OpenAI errors', async () => {
    for (const [m, p] of [
      ['GET', '/match_sort'],
      ['PUT', '/match_sort'],
      ['POST', '/nope'],
      ['DELETE', '/healthz'],
    ] as const) {
      expectOpenAIError(await send(`${indexerUrl}${p}`, m, m === 'GET' ? undefined : '{}'), `${m} ${p}`);
    }
  });
});

describe('mock-vllm under hostile input', () => {
  const chat = { model: 'm', messages: [{ role: 'user', content: 'hello' }], max_tokens: 2 };
  const completion = { model: 'm', prompt: 'hello', max_tokens: 2 };
  const FIELDS = [
    'model',
    'messages',
    'prompt',
    'stream',
    'max_tokens',
    'max_completion_tokens',
    'stream_options',
    'kv_transfer_params',
  ];

  it('a valid chat request answers 200 (baseline)', async () => {
    const a = await send(`${vllmUrl}/v1/chat/completions`, 'POST', JSON.stringify(chat));
    expect(a.status).toBe(200);
  });

  it('random text, bytes and JSON documents on both endpoints: 4xx OpenAI errors, never 5xx', async () => {
    const rss0 = vllm.rssBytes();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/v1/chat/completions', '/v1/completions'),
        fc.oneof(
          fc.string({ maxLength: 300 }),
          badBytes,
          anyJson.map((d) => JSON.stringify(d) ?? 'null'),
        ),
        async (path, body) => {
          expectHandled(await send(`${vllmUrl}${path}`, 'POST', body), path);
        },
      ),
      RUN,
    );
    expect(vllm.alive()).toBe(true);
    expect(vllm.rssBytes() - rss0).toBeLessThan(RSS_BUDGET);
  });

  it('each field of a valid request replaced by any type or removed: 4xx or 200', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.constantFrom(...FIELDS),
        fc.option(anyJson, { nil: undefined }),
        async (isChat, field, value) => {
          const body: Record<string, unknown> = { ...(isChat ? chat : completion) };
          if (value === undefined) delete body[field];
          else body[field] = value;
          const path = isChat ? '/v1/chat/completions' : '/v1/completions';
          expectHandled(
            await send(`${vllmUrl}${path}`, 'POST', JSON.stringify(body)),
            `${path} ${field}=${JSON.stringify(value)?.slice(0, 100)}`,
          );
        },
      ),
      RUN,
    );
    expect(vllm.alive()).toBe(true);
  });

  it('a body over the limit is answered 413 with an OpenAI error, and memory stays bounded', async () => {
    const rss0 = vllm.rssBytes();
    const a = await send(`${vllmUrl}/v1/completions`, 'POST', Buffer.alloc(40 * 1024 * 1024, 0x61)).catch(
      (e: Error) => ({ status: 0, body: e.message, contentType: '' }),
    );
    expectOpenAIError(a, 'mock-vllm 40 MB body');
    expect(vllm.alive()).toBe(true);
    expect(vllm.rssBytes() - rss0).toBeLessThan(RSS_BUDGET);
  });

  it('4 concurrent 14 MB nested bodies to each of the indexer and mock-vllm: 400s, peak RSS +<150 MB (issue 17)', async () => {
    const depth = 7 * 1024 * 1024;
    const open = '['.repeat(depth);
    const close = ']'.repeat(depth);
    const targets = [
      {
        proc: indexer,
        url: `${indexerUrl}/match_sort`,
        body: `{"model":"m","candidates":["a:1"],"prompt":"x","x":${open}${close}}`,
      },
      {
        proc: vllm,
        url: `${vllmUrl}/v1/completions`,
        body: `{"model":"m","prompt":"x","x":${open}${close}}`,
      },
    ];
    for (const t of targets) {
      const rss0 = t.proc.rssBytes();
      let peak = rss0;
      const timer = setInterval(() => (peak = Math.max(peak, t.proc.rssBytes())), 10);
      const answers = await Promise.all([1, 2, 3, 4].map(() => send(t.url, 'POST', t.body, {}, 30_000)));
      clearInterval(timer);
      for (const a of answers) {
        expectOpenAIError(a, t.url);
        expect(a.status).toBe(400);
        expect(a.body).toMatch(/nests deeper than 128 levels/);
      }
      expect(peak - rss0, t.url).toBeLessThan(150 * 1024 * 1024);
      expect(t.proc.alive()).toBe(true);
    }
  }, 60_000);

  it('deep nesting and a too-large max_tokens: 400', async () => {
    expectOpenAIError(
      await send(
        `${vllmUrl}/v1/chat/completions`,
        'POST',
        `{"model":"m","messages":${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
      ),
      'deep',
    );
    expectOpenAIError(
      await send(`${vllmUrl}/v1/completions`, 'POST', JSON.stringify({ ...completion, max_tokens: 1e9 })),
      'max_tokens 1e9',
    );
    expectOpenAIError(
      await send(`${vllmUrl}/v1/completions`, 'POST', JSON.stringify({ ...completion, model: 'other' })),
      'unknown model',
    );
    expect(vllm.alive()).toBe(true);
  });
});
