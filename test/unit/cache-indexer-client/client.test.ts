import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CacheIndexerClient,
  matchSortBody,
  parseMatchSort,
} from '../../../src/datalayer/cache-indexer-client.js';
import { parseMatchRequest } from '../../../src/cacheindexer/match-request.js';
import type { LLMRequest } from '../../../src/scheduling/types.js';

const req: LLMRequest = {
  requestId: 'r',
  model: 'm',
  apiType: 'chat',
  promptText: 'x',
  messages: [{ role: 'user', content: 'hi' }],
  promptTokens: 1,
  stream: false,
  headers: {},
};

let mode: 'ok' | 'slow' | 'error' | 'garbage' | 'stall' = 'ok';
let calls = 0;
let lastBody = '';
let lastHeaders: Record<string, string | string[] | undefined> = {};
const stalled: Array<{ destroy(): void }> = [];
let server: Server;
let url = '';

beforeAll(async () => {
  server = createServer((r, res) => {
    calls++;
    lastHeaders = r.headers;
    // Never reads the body: the client's writes fill the socket and wait.
    if (mode === 'stall') {
      stalled.push(r);
      return void r.pause();
    }
    let body = '';
    r.on('data', (c) => (body += c));
    r.on('end', () => {
      lastBody = body;
      if (mode === 'slow') return void setTimeout(() => res.end('{"results":[]}'), 300);
      if (mode === 'error') return void res.writeHead(500).end('boom');
      if (mode === 'garbage') return void res.end('{"results": "nope"}');
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          results: [
            { endpoint: 'a:1', hitRate: 0.75, matchedBlocks: 3, totalBlocks: 4 },
            { endpoint: 'b:1', hitRate: 0 },
          ],
        }),
      );
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/match_sort`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('cache-indexer client', () => {
  it('sends the documented request and parses hit rates', async () => {
    mode = 'ok';
    const c = new CacheIndexerClient();
    const out = await c.matchSort(url, req, ['a:1', 'b:1'], 1000);
    expect(out.status).toBe('ok');
    expect([...out.hitRates!]).toEqual([
      ['a:1', 0.75],
      ['b:1', 0],
    ]);
    expect(JSON.parse(lastBody)).toEqual({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      candidates: ['a:1', 'b:1'],
    });
    await c.close();
  });

  it('times out, then opens the breaker and stops asking until the back-off passes', async () => {
    const c = new CacheIndexerClient({ failureThreshold: 2, minBackoffMs: 200 });
    mode = 'slow';
    expect((await c.matchSort(url, req, ['a:1'], 30)).status).toBe('timeout');
    mode = 'error';
    expect((await c.matchSort(url, req, ['a:1'], 1000)).status).toBe('error');
    const before = calls;
    const skipped = await c.matchSort(url, req, ['a:1'], 1000);
    expect(skipped.status).toBe('open');
    expect(skipped.hitRates).toBeUndefined();
    expect(calls).toBe(before);
    await new Promise((r) => setTimeout(r, 250));
    mode = 'ok';
    expect((await c.matchSort(url, req, ['a:1'], 1000)).status).toBe('ok');
    expect(c.breakerOpen).toBe(false);
    await c.close();
  });

  it('rejects malformed answers', async () => {
    expect(() => parseMatchSort('{"results":"x"}')).toThrow(/results/);
    expect(() => parseMatchSort('{"results":[{"endpoint":1,"hitRate":0}]}')).toThrow(/endpoint/);
    expect(parseMatchSort('{"results":[{"endpoint":"a","hitRate":7}]}').get('a')).toBe(1);
    mode = 'garbage';
    const c = new CacheIndexerClient();
    expect((await c.matchSort(url, req, ['a:1'], 1000)).status).toBe('error');
    await c.close();
    expect(JSON.parse(String(matchSortBody({ ...req, messages: undefined, tokenIds: [1, 2] }, [])))).toEqual({
      model: 'm',
      token_ids: [1, 2],
      candidates: [],
    });
  });

  it("splices the body's own messages bytes into the request when the reader kept them", () => {
    const messages = '[{"role":"user","content":[{"type":"text","text":"h\\u00e9 \\"x\\""}]}]';
    const chat = {
      ...req,
      apiType: 'chat' as const,
      model: 'm"1',
      messages: [{ role: 'user', content: 'hé "x"' }],
      messagesJson: () => Buffer.from(messages),
    };
    const body = matchSortBody(chat, ['a:1', 'b:2']);
    if (typeof body === 'string') throw new Error('expected the spliced pieces');
    const spliced = Buffer.concat(body.chunks.map((c) => Buffer.from(c)));
    expect(body.length).toBe(spliced.length);
    expect(String(spliced)).toBe(`{"model":"m\\"1","messages":${messages},"candidates":["a:1","b:2"]}`);
    // The head and tail are remembered from the last call: another model or other candidates,
    // even the same array changed in place, give theirs.
    const piecesOf = (r: typeof chat, c: string[]) => {
      const b = matchSortBody(r, c);
      if (typeof b === 'string') throw new Error('expected the spliced pieces');
      return String(Buffer.concat(b.chunks.map((x) => Buffer.from(x))));
    };
    const cands = ['a:1', 'b:2'];
    expect(piecesOf(chat, cands)).toBe(String(spliced));
    cands[1] = 'c:3';
    expect(piecesOf(chat, cands)).toBe(`{"model":"m\\"1","messages":${messages},"candidates":["a:1","c:3"]}`);
    expect(piecesOf({ ...chat, model: 'n' }, [])).toBe(
      `{"model":"n","messages":${messages},"candidates":[]}`,
    );
    expect(piecesOf(chat, ['a:1'])).toBe(`{"model":"m\\"1","messages":${messages},"candidates":["a:1"]}`);
    // The indexer reads the same prompt from it as from the serialised messages.
    const viaRaw = parseMatchRequest(spliced);
    const viaJson = parseMatchRequest(
      String(matchSortBody({ ...chat, messagesJson: undefined }, ['a:1', 'b:2'])),
    );
    expect(viaRaw).toEqual(viaJson);
  });

  it('sends the spliced pieces as one body of the stated length', async () => {
    const messages = '[{"role":"user","content":"hé ' + 'x'.repeat(200_000) + '"}]';
    const chat = { ...req, messagesJson: () => Buffer.from(messages) };
    mode = 'ok';
    const c = new CacheIndexerClient();
    const out = await c.matchSort(url, chat, ['a:1', 'b:1'], 5000);
    expect(out.status).toBe('ok');
    expect(out.hitRates?.get('a:1')).toBe(0.75);
    expect(lastHeaders['content-length']).toBe(String(Buffer.byteLength(lastBody)));
    expect(lastHeaders['transfer-encoding']).toBeUndefined();
    expect(lastBody).toBe(`{"model":"m","messages":${messages},"candidates":["a:1","b:1"]}`);
    // Twice on one kept-alive connection: the next request is framed right after it.
    expect((await c.matchSort(url, chat, ['a:1'], 5000)).status).toBe('ok');
    expect(lastBody).toBe(`{"model":"m","messages":${messages},"candidates":["a:1"]}`);
    await c.close();
  });

  it('times out while the spliced pieces are still being written, and the next request goes through', async () => {
    const raw = Buffer.from('[{"role":"user","content":"' + 'y'.repeat(8 << 20) + '"}]');
    const chat = { ...req, messagesJson: () => raw };
    const c = new CacheIndexerClient();
    mode = 'stall';
    expect((await c.matchSort(url, chat, ['a:1'], 200)).status).toBe('timeout');
    // The caller may reuse the body's memory now (a pooled body goes back after the pick).
    raw.fill(0x7a);
    mode = 'ok';
    const small = { ...req, messagesJson: () => Buffer.from('[{"role":"user","content":"hi"}]') };
    expect((await c.matchSort(url, small, ['a:1'], 5000)).status).toBe('ok');
    expect(lastBody).toBe('{"model":"m","messages":[{"role":"user","content":"hi"}],"candidates":["a:1"]}');
    for (const r of stalled.splice(0)) r.destroy();
    await c.close();
  });
});
