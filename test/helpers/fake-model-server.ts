// An in-process stand-in for a vLLM model server whose behaviour a test
// controls: /metrics reports the queue depths and KV usage the test sets
// (or fails: garbage, 500, hang, connection closed), and POST /v1/* streams
// a short SSE completion (or dies mid-stream). Every field of the returned
// object can be changed while the server runs.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type MetricsMode = 'ok' | 'garbage' | 'error' | 'hang' | 'close';
export type CompletionMode = 'ok' | 'die-mid-stream';

export interface FakeModel {
  port: number;
  /** `127.0.0.1:<port>`, the endpoint id the EPP uses. */
  id: string;
  metricsMode: MetricsMode;
  completionMode: CompletionMode;
  waiting: number;
  running: number;
  kv: number;
  /** Emit only the pre-rename KV gauge (vllm:gpu_cache_usage_perc). */
  legacyKv: boolean;
  /** /metrics requests seen (settable, e.g. reset to 0). */
  scrapes: number;
  /** POST /v1/* requests seen. */
  completions: number;
  close(): Promise<void>;
}

export interface FakeModelOptions {
  /** Default: a port the OS picks. */
  port?: number;
  waiting?: number;
  running?: number;
  kv?: number;
  /** Tokens per streamed completion, and the pause between them. */
  tokens?: number;
  tokenMs?: number;
}

const GARBAGE = [
  'vllm:num_requests_waiting{model_name="m" NaNNaN\n',
  '\u0000\u0001\u0002binary\xff\xfe',
  'vllm:num_requests_waiting{model_name="m"} not-a-number\nvllm:kv_cache_usage_perc 7e400\n',
  '<html><body>502 Bad Gateway</body></html>',
  '# TYPE vllm:num_requests_waiting gauge\nvllm:num_requests_waiting{' + 'a="b",'.repeat(10_000) + '} 1\n',
  'vllm:kv_cache_usage_perc{model_name="m"} -5\nvllm:num_requests_waiting{model_name="m"} -1e9\n',
];

function metricsText(m: FakeModel): string {
  const kvName = m.legacyKv ? 'vllm:gpu_cache_usage_perc' : 'vllm:kv_cache_usage_perc';
  return [
    '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
    '# TYPE vllm:num_requests_waiting gauge',
    `vllm:num_requests_waiting{engine="0",model_name="m"} ${m.waiting}`,
    `vllm:num_requests_running{engine="0",model_name="m"} ${m.running}`,
    `${kvName}{engine="0",model_name="m"} ${m.kv}`,
    '',
  ].join('\n');
}

export async function fakeModel(opts: FakeModelOptions = {}): Promise<FakeModel> {
  const tokens = opts.tokens ?? 5;
  const tokenMs = opts.tokenMs ?? 5;
  let garbageIdx = 0;
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/metrics')) {
      fake.scrapes++;
      switch (fake.metricsMode) {
        case 'ok':
          return void res
            .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
            .end(metricsText(fake));
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
      fake.completions++;
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        let i = 0;
        const tick = () => {
          if (fake.completionMode === 'die-mid-stream' && i === 2) return void req.socket.destroy();
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
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const fake: FakeModel = {
    port,
    id: `127.0.0.1:${port}`,
    metricsMode: 'ok',
    completionMode: 'ok',
    waiting: opts.waiting ?? 0,
    running: opts.running ?? 1,
    kv: opts.kv ?? 0.1,
    legacyKv: false,
    scrapes: 0,
    completions: 0,
    // Hung /metrics requests and open streams would keep close() waiting: cut them.
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  return fake;
}
