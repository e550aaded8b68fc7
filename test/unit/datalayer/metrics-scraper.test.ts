import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { generate } from 'selfsigned';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { MAX_METRICS_PAGE_BYTES, MetricsScraper } from '../../../src/datalayer/metrics-scraper.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { Endpoint } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';

const PAGE = 'vllm:num_requests_waiting 1\nvllm:kv_cache_usage_perc 0.5\n';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fake {
  ep: Endpoint;
  polls: number;
  maxConcurrent: number;
  connections: number;
  server: Server;
}

const open: Fake[] = [];
const scrapers: MetricsScraper[] = [];

async function fake(handler: (f: Fake) => { status: number; body: string; delayMs?: number }): Promise<Fake> {
  let inFlight = 0;
  const f = { polls: 0, maxConcurrent: 0, connections: 0 } as Fake;
  f.server = createServer((_req, res) => {
    f.polls++;
    inFlight++;
    f.maxConcurrent = Math.max(f.maxConcurrent, inFlight);
    const a = handler(f);
    setTimeout(() => {
      inFlight--;
      res.writeHead(a.status).end(a.body);
    }, a.delayMs ?? 0);
  });
  f.server.on('connection', () => f.connections++);
  await new Promise<void>((r) => f.server.listen(0, '127.0.0.1', r));
  const port = (f.server.address() as AddressInfo).port;
  f.ep = { id: `127.0.0.1:${port}`, name: `p${port}`, address: '127.0.0.1', port, labels: {} };
  open.push(f);
  return f;
}

/**
 * `errors` collects "<endpoint> <message>". `timeoutMs` (default: the
 * scraper's, 250 ms at these intervals): tests that count connections pass a
 * long one, since a poll timed out on a loaded machine closes its connection.
 */
function scraper(
  store: MemoryStateStore,
  intervalMs: number,
  errors: string[] = [],
  timeoutMs?: number,
): MetricsScraper {
  const s = new MetricsScraper({
    store,
    logger: silentLogger(),
    intervalMs,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    hooks: { onScrapeError: (id, err) => errors.push(`${id} ${err.message}`) },
  });
  scrapers.push(s);
  return s;
}

/** Scrapes one endpoint (long timeout: connections are counted) until `n` errors, or 5 s. */
async function scrapeUntilErrors(
  f: Fake,
  intervalMs: number,
  n: number,
): Promise<{ s: MetricsScraper; store: MemoryStateStore; errors: string[] }> {
  const errors: string[] = [];
  const store = new MemoryStateStore();
  const s = scraper(store, intervalMs, errors, 10_000);
  s.setEndpoints([f.ep]);
  s.start();
  for (let i = 0; i < 500 && errors.length < n; i++) await sleep(10);
  return { s, store, errors };
}

afterEach(async () => {
  for (const s of scrapers.splice(0)) await s.stop();
  for (const f of open.splice(0)) {
    f.server.close();
    f.server.closeAllConnections();
  }
});

describe('MetricsScraper polling', () => {
  test('a slow endpoint is polled back to back, never twice at once, and does not slow the others', async () => {
    const slow = await fake(() => ({ status: 200, body: PAGE, delayMs: 60 }));
    const fast = await fake(() => ({ status: 200, body: PAGE }));
    const store = new MemoryStateStore();
    const s = scraper(store, 20, [], 10_000);
    s.setEndpoints([slow.ep, fast.ep]);
    s.start();
    await sleep(500);
    await s.stop();
    // ~25 polls of the fast one at 20 ms; the slow one runs back to back (~8), not every other tick (~4-5).
    expect(fast.polls).toBeGreaterThanOrEqual(12);
    expect(slow.polls).toBeGreaterThanOrEqual(5);
    expect(slow.maxConcurrent).toBe(1);
    expect(fast.maxConcurrent).toBe(1);
    expect(fast.connections).toBe(1);
  });

  test('a timed-out poll closes its connection; the next poll opens a new one', async () => {
    // Why the connection-counting tests pass a long timeout: at the default
    // (250 ms here; undici's timers fire on a coarse tick, so 0.25-1 s) a
    // poll slowed by a loaded machine is a second connection.
    let n = 0;
    const slowOnce = await fake(() => ({ status: 200, body: PAGE, delayMs: n++ === 1 ? 8_000 : 0 }));
    const errors: string[] = [];
    const s = scraper(new MemoryStateStore(), 10, errors, 100);
    s.setEndpoints([slowOnce.ep]);
    s.start();
    for (let i = 0; i < 600 && slowOnce.polls < 4; i++) await sleep(10);
    expect(slowOnce.polls).toBeGreaterThanOrEqual(4);
    expect(errors).toHaveLength(1);
    expect(errors[0]).not.toMatch(/ HTTP /);
    expect(slowOnce.connections).toBe(2);
  });

  test('an HTTP error page is an error, its body is drained and the connection kept', async () => {
    const bad = await fake(() => ({ status: 503, body: 'overloaded '.repeat(2000) }));
    const { s, store, errors } = await scrapeUntilErrors(bad, 10, 5);
    expect(errors.length).toBeGreaterThanOrEqual(5);
    for (const e of errors) expect(e).toMatch(/ HTTP 503 from /);
    expect(s.stats.errors).toBe(errors.length);
    expect(bad.connections).toBe(1);
    expect((await store.readSnapshot({})).signals.get(bad.ep.id)).toBeUndefined();
  });

  test('a page over the size bound is an error (counted), its connection dropped, nothing written', async () => {
    const huge = 'x'.repeat(MAX_METRICS_PAGE_BYTES + 1024);
    const big = await fake(() => ({ status: 200, body: huge }));
    const { store, errors } = await scrapeUntilErrors(big, 50, 2);
    expect(errors.length).toBeGreaterThanOrEqual(2);
    for (const e of errors) expect(e).toMatch(/ is over 16777216 bytes$/);
    expect(big.connections).toBeGreaterThanOrEqual(2);
    expect((await store.readSnapshot({})).signals.get(big.ep.id)).toBeUndefined();
  });

  test('endpoints added later are polled at once and then on the shared tick; removed ones stop', async () => {
    const a = await fake(() => ({ status: 200, body: PAGE }));
    const b = await fake(() => ({ status: 200, body: PAGE }));
    const store = new MemoryStateStore();
    const s = scraper(store, 20);
    s.setEndpoints([a.ep]);
    s.start();
    await sleep(100);
    s.setEndpoints([a.ep, b.ep]);
    for (let i = 0; i < 50 && b.polls === 0; i++) await sleep(2);
    expect(b.polls).toBe(1);
    await sleep(200);
    expect(b.polls).toBeGreaterThanOrEqual(5);
    s.setEndpoints([b.ep]);
    await sleep(30); // a poll of a in flight at removal may still land
    const aPolls = a.polls;
    await sleep(100);
    expect(a.polls).toBe(aPolls);
    expect((await store.readSnapshot({})).signals.get(b.ep.id)).toMatchObject({ waitingQueueSize: 1 });
  });

  test('an unusable address fails its polls (counted) instead of throwing from setEndpoints', async () => {
    const errors: string[] = [];
    const s = scraper(new MemoryStateStore(), 10, errors);
    const ep: Endpoint = { id: 'bad', name: 'bad', address: 'not a host', port: 1, labels: {} };
    expect(() => s.setEndpoints([ep])).not.toThrow();
    s.start();
    for (let i = 0; i < 100 && errors.length < 2; i++) await sleep(10);
    expect(errors.length).toBeGreaterThanOrEqual(2);
  });
});

describe('MetricsScraper over https', () => {
  test('https endpoints: TLS through undici (an untrusted certificate fails the poll, counted)', async () => {
    const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
    });
    let handshakes = 0;
    let requests = 0;
    const server = createTlsServer({ key: pems.private, cert: pems.cert }, (_req, res) => {
      requests++;
      res.end(PAGE);
    });
    server.on('secureConnection', () => handshakes++);
    server.on('tlsClientError', () => handshakes++);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const errors: string[] = [];
    const s = new MetricsScraper({
      store: new MemoryStateStore(),
      logger: silentLogger(),
      intervalMs: 20,
      scheme: 'https',
      hooks: { onScrapeError: (id, err) => errors.push(`${id} ${err.message}`) },
    });
    scrapers.push(s);
    try {
      s.setEndpoints([{ id: 'tls', name: 'tls', address: '127.0.0.1', port, labels: {} }]);
      s.start();
      for (let i = 0; i < 300 && errors.length < 2; i++) await sleep(10);
      expect(errors.length).toBeGreaterThanOrEqual(2);
      // A TLS client that refused the certificate: a plain-text GET would be no handshake at all.
      for (const e of errors) expect(e).toMatch(/certificate/i);
      expect(handshakes).toBeGreaterThanOrEqual(1);
      expect(requests).toBe(0);
    } finally {
      await s.stop();
      server.close();
      server.closeAllConnections();
    }
  });
});
