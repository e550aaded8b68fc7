// In-process stand-ins whose failure the fault and fuzz tests control: a
// model server whose /metrics can be healthy, garbage, erroring or hung,
// and whose completions can stream or die mid-stream; and a cache-indexer
// whose /match_sort can answer, sleep past the EPP's timeout, or be down.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type MetricsMode = 'ok' | 'garbage' | 'error' | 'hang' | 'close';
export type CompletionMode = 'ok' | 'die-mid-stream';

export interface FakeModel {
  port: number;
  id: string;
  metricsMode: MetricsMode;
  completionMode: CompletionMode;
  waiting: number;
  kv: number;
  /** /metrics requests seen. */
  scrapes: number;
  completions: number;
  close(): Promise<void>;
}

const GARBAGE = [
  'vllm:num_requests_waiting{model_name="m" NaNNaN\n',
  '\u0000\u0001\u0002binary\xff\xfe',
  'vllm:num_requests_waiting{model_name="m"} not-a-number\nvllm:kv_cache_usage_perc 7e400\n',
  '<html><body>502 Bad Gateway</body></html>',
  '# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{' + 'a="b",'.repeat(10_000) + '} 1\n',
  'vllm:kv_cache_usage_perc{model_name="m"} -5\nvllm:num_requests_waiting{model_name="m"} -1e9\n',
];

function metricsText(waiting: number, kv: number): string {
  return [
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting{model_name="m"} ${waiting}`,
    `vllm:num_requests_running{model_name="m"} 1`,
    `vllm:kv_cache_usage_perc{model_name="m"} ${kv}`,
    '',
  ].join('\n');
}

async function listen(server: Server, port = 0): Promise<number> {
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

function closer(server: Server, sockets: Set<Socket>): () => Promise<void> {
  return () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
}

export async function fakeModel(
  opts: { port?: number; waiting?: number; kv?: number; tokens?: number; tokenMs?: number } = {},
): Promise<FakeModel> {
  const sockets = new Set<Socket>();
  let garbageIdx = 0;
  const state = {
    metricsMode: 'ok' as MetricsMode,
    completionMode: 'ok' as CompletionMode,
    waiting: opts.waiting ?? 0,
    kv: opts.kv ?? 0.1,
    scrapes: 0,
    completions: 0,
  };
  const tokens = opts.tokens ?? 5;
  const tokenMs = opts.tokenMs ?? 5;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url?.startsWith('/metrics')) {
      state.scrapes++;
      switch (state.metricsMode) {
        case 'ok':
          return void res
            .writeHead(200, { 'content-type': 'text/plain' })
            .end(metricsText(state.waiting, state.kv));
        case 'garbage':
          return void res
            .writeHead(200, { 'content-type': 'text/plain' })
            .end(GARBAGE[garbageIdx++ % GARBAGE.length]);
        case 'error':
          return void res.writeHead(500).end('internal error');
        case 'close':
          return void req.socket.destroy();
        case 'hang':
          return; // never answers
      }
    }
    if (req.method === 'POST' && req.url?.startsWith('/v1/')) {
      state.completions++;
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const tick = () => {
          if (state.completionMode === 'die-mid-stream' && i === 2) return void req.socket.destroy();
          if (i < tokens) {
            res.write(`data: {"choices":[{"index":0,"text":"t${i}"}]}\n\n`);
            i++;
            setTimeout(tick, tokenMs);
            return;
          }
          res.write(
            `data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":${tokens},"total_tokens":${3 + tokens}}}\n\n`,
          );
          res.end('data: [DONE]\n\n');
        };
        tick();
      });
      return;
    }
    res.writeHead(404).end();
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server, opts.port);
  return Object.assign(state, { port, id: `127.0.0.1:${port}`, close: closer(server, sockets) }) as FakeModel;
}

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
  const sockets = new Set<Socket>();
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
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const port = await listen(server, opts.port);
  return Object.assign(state, {
    port,
    url: `http://127.0.0.1:${port}`,
    close: closer(server, sockets),
  }) as FakeIndexer;
}

export function endpointsYaml(
  eps: Array<{ name: string; port: number; labels?: Record<string, string> }>,
): string {
  if (eps.length === 0) return 'endpoints: []\n';
  return (
    'endpoints:\n' +
    eps
      .map(
        (e) =>
          `- name: ${e.name}\n  address: 127.0.0.1\n  port: ${e.port}\n` +
          (e.labels ? `  labels: ${JSON.stringify(e.labels)}\n` : ''),
      )
      .join('')
  );
}
