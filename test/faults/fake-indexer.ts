// An in-process cache-indexer stand-in whose failure the fault tests
// control: /match_sort can answer, sleep past the EPP's timeout, or error.
// (The fake model server is test/helpers/fake-model-server.ts.)
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export type IndexerMode = 'ok' | 'slow' | 'error';

export interface FakeIndexer {
  port: number;
  url: string;
  mode: IndexerMode;
  /** How long a 'slow' answer takes. */
  delayMs: number;
  calls: number;
  /** hit rate answered for every candidate in 'ok' mode. */
  hitRate: number;
  close(): Promise<void>;
}

/** A /match_sort server; 'slow' sleeps delayMs before answering. */
export async function fakeIndexer(opts: { port?: number } = {}): Promise<FakeIndexer> {
  const state = { mode: 'ok' as IndexerMode, delayMs: 2_000, calls: 0, hitRate: 0.5 };
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      if (req.url !== '/match_sort') return void res.writeHead(404).end();
      state.calls++;
      let candidates: string[] = [];
      try {
        candidates =
          (JSON.parse(Buffer.concat(parts).toString()) as { candidates: string[] }).candidates ?? [];
      } catch {
        // answered below with whatever was parsed
      }
      const answer = () => {
        if (state.mode === 'error')
          return void res
            .writeHead(500, { 'content-type': 'application/json' })
            .end('{"error":{"message":"boom"}}');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            results: candidates.map((endpoint) => ({
              endpoint,
              hitRate: state.hitRate,
              matchedBlocks: 1,
              totalBlocks: 2,
            })),
          }),
        );
      };
      if (state.mode === 'slow') setTimeout(answer, state.delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return Object.assign(state, {
    port,
    url: `http://127.0.0.1:${port}`,
    // Slow answers still pending would keep close() waiting: cut them.
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  }) as FakeIndexer;
}
