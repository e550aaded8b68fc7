// `npm run bench -- scrape [--endpoints 8,32,128] [--seconds 3] [--interval 50] [--bodies mock,large]
//                         [--loops agent,dispatch,request,fetch] [--skip-scan]`
//
// CPU the EPP spends scraping vLLM /metrics. Two bodies:
//   mock:  the /metrics page of a real `hermes-router mock-vllm` (started once,
//          fetched once, stopped), served chunked as mock-vllm does;
//   large: a generated vLLM exposition the size of a busy multi-engine pod
//          (histograms with every bucket, counters with _created, python and
//          process collectors, HTTP instrumentation), served with a
//          Content-Length as vLLM's uvicorn does.
// The model servers run in a child process so the figures are the scraper's
// CPU alone: a MetricsScraper (MemoryStateStore, default client settings)
// polls N endpoints every --interval ms; CPU is process.cpuUsage() over the
// measured window after a warm-up. "where it goes" splits a scrape into the
// page scan (timed separately, many times over the same bytes) and the rest
// (HTTP client, timers, store write). For a profile run
// `node --cpu-prof dist/test/bench/run.js scrape --endpoints 32 --bodies large`.
// --loops: instead of the scraper, a bare poll loop of the same shape (one
// shared timer, one keep-alive connection per endpoint, the page scanned)
// per HTTP client API, to compare the clients alone: `agent` undici's
// dispatch on one shared Agent with a controller-API handler (the scraper
// before round two), `dispatch` undici's dispatch with an original-API
// handler on a per-endpoint Client, `request` undici's request() (body read
// with .arrayBuffer()), `fetch` undici's fetch() with a per-endpoint Client.
// (Round two also had `net`, a hand-written node:net keep-alive GET client,
// and `--client net|undici` for the scraper; dropped with it, see
// docs/benchmarks.md "Scraping cost, round two".)
// "CPU us/round" is the CPU of one poll of every endpoint (one interval).
// Writes bench-results/scrape.json.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { Agent, Client, fetch as undiciFetch, request as undiciRequest, type Dispatcher } from 'undici';
import {
  MetricsScraper,
  signalsFromMetrics,
  VLLM_KV_USAGE,
  VLLM_KV_USAGE_OLD,
  VLLM_RUNNING,
  VLLM_WAITING,
} from '../../src/datalayer/metrics-scraper.js';
import { parsePromText } from '../../src/datalayer/prom-text.js';
import { silentLogger } from '../../src/observability/logger.js';
import type { Endpoint } from '../../src/scheduling/types.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { spawnFn } from '../helpers/spawn.js';

const SERVE_ENV = 'HERMES_SCRAPE_BENCH_SERVE';

interface ServeRequest {
  /** Absent: only report the connections accepted so far. */
  body?: string;
  count: number;
  chunked: boolean;
}

// ---- child: the model servers ----------------------------------------------

async function serve(): Promise<void> {
  const servers: Server[] = [];
  let connections = 0;
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: ServeRequest | 'close') => {
    if (m === 'close') {
      for (const s of servers) s.closeAllConnections();
      process.exit(0);
    }
    if (m.body === undefined) {
      process.send!({ ports: [], connections });
      return;
    }
    const text = m.body;
    void (async () => {
      for (const s of servers.splice(0)) {
        s.close();
        s.closeAllConnections();
      }
      connections = 0;
      const body = Buffer.from(text);
      const ports: number[] = [];
      for (let i = 0; i < m.count; i++) {
        const s = createServer((_req, res) => {
          res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
          if (m.chunked) {
            res.write(body);
            res.end();
          } else res.end(body);
        });
        s.keepAliveTimeout = 30_000;
        s.on('connection', () => connections++);
        await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
        servers.push(s);
        ports.push((s.address() as AddressInfo).port);
      }
      process.send!({ ports, connections });
    })();
  });
  process.send!('ready');
}

if (process.env[SERVE_ENV] === '1') await serve();

class Servers {
  private constructor(private readonly child: ChildProcess) {}

  static async start(): Promise<Servers> {
    const child = fork(fileURLToPath(import.meta.url), [], {
      env: { ...process.env, [SERVE_ENV]: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (c) => reject(new Error(`server child exited with ${c}`)));
    });
    return new Servers(child);
  }

  private ask(req: ServeRequest): Promise<{ ports: number[]; connections: number }> {
    return new Promise((resolve) => {
      this.child.once('message', resolve);
      this.child.send(req);
    });
  }

  async serve(req: ServeRequest): Promise<number[]> {
    return (await this.ask(req)).ports;
  }

  /** TCP connections the servers accepted since the last serve(). */
  async connections(): Promise<number> {
    return (await this.ask({ count: 0, chunked: false })).connections;
  }

  close(): void {
    if (this.child.connected) this.child.send('close');
    setTimeout(() => this.child.kill('SIGKILL'), 2_000).unref();
  }
}

// ---- bodies -------------------------------------------------------------------

async function mockVllmPage(): Promise<string> {
  const p = await spawnFn('mock-vllm', ['--port', '0'], { ready: { output: /mock-vllm listening/ } });
  try {
    const m = /"port":(\d+)/.exec(p.output());
    if (!m) throw new Error('mock-vllm did not print its port');
    // A few requests first, so the latency histograms have series as on a live pod.
    const base = `http://127.0.0.1:${m[1]}`;
    for (let i = 0; i < 3; i++) {
      await fetch(`${base}/v1/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'mock-model', prompt: `hello ${i}`, max_tokens: 4 }),
      }).then((r) => r.arrayBuffer());
    }
    return await (await fetch(`${base}/metrics`)).text();
  } finally {
    await p.stop();
  }
}

const LAT = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
const TOK = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000];

/** A vLLM-like exposition: `engines` data-parallel engines of one model. */
export function largeVllmPage(engines = 2): string {
  const out: string[] = [];
  const model = 'model_name="meta-llama/Llama-3.1-70B-Instruct"';
  const fam = (name: string, type: string, help: string) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
  };
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 1000;
  fam('python_gc_objects_collected_total', 'counter', 'Objects collected during gc');
  for (const g of [0, 1, 2])
    out.push(`python_gc_objects_collected_total{generation="${g}"} ${rnd().toFixed(1)}`);
  fam('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.');
  out.push('process_resident_memory_bytes 1.2345678e+10');
  fam('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.');
  out.push('process_cpu_seconds_total 12345.67');
  const handlers = ['/v1/completions', '/v1/chat/completions', '/metrics', '/health', '/v1/models'];
  fam('http_requests_total', 'counter', 'Total number of requests by method, status and handler.');
  for (const h of handlers)
    for (const s of ['2xx', '4xx'])
      out.push(`http_requests_total{handler="${h}",method="GET",status="${s}"} ${rnd().toFixed(1)}`);
  fam('http_request_duration_seconds', 'histogram', 'Latency with only few buckets by handler.');
  for (const h of handlers) {
    let c = 0;
    for (const b of [0.1, 0.5, 1])
      out.push(
        `http_request_duration_seconds_bucket{handler="${h}",le="${b}",method="GET"} ${(c += rnd()).toFixed(1)}`,
      );
    out.push(`http_request_duration_seconds_bucket{handler="${h}",le="+Inf",method="GET"} ${c.toFixed(1)}`);
    out.push(`http_request_duration_seconds_count{handler="${h}",method="GET"} ${c.toFixed(1)}`);
    out.push(`http_request_duration_seconds_sum{handler="${h}",method="GET"} ${(c * 0.3).toFixed(3)}`);
  }
  const gauge = (name: string, help: string, v: (e: number) => number) => {
    fam(name, 'gauge', help);
    for (let e = 0; e < engines; e++) out.push(`${name}{engine="${e}",${model}} ${v(e)}`);
  };
  gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', (e) => 10 + e);
  gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', (e) => e);
  gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', (e) => 0.1 * (e + 1));
  fam('vllm:num_requests_waiting_by_reason', 'gauge', 'Waiting requests by reason.');
  for (let e = 0; e < engines; e++)
    for (const r of ['capacity', 'deferred'])
      out.push(`vllm:num_requests_waiting_by_reason{engine="${e}",${model},reason="${r}"} 1.0`);
  fam('vllm:lora_requests_info', 'gauge', 'Running stats on lora requests.');
  out.push('vllm:lora_requests_info{max_lora="0",running_lora_adapters="",waiting_lora_adapters=""} 1.7e+09');
  const counter = (name: string, help: string, extra: string[] = ['']) => {
    fam(`${name}_total`, 'counter', help);
    for (let e = 0; e < engines; e++)
      for (const x of extra) out.push(`${name}_total{engine="${e}",${model}${x}} ${rnd().toFixed(1)}`);
    fam(`${name}_created`, 'gauge', help);
    for (let e = 0; e < engines; e++)
      for (const x of extra) out.push(`${name}_created{engine="${e}",${model}${x}} 1.7500000001e+09`);
  };
  counter('vllm:num_preemptions', 'Cumulative number of preemption from the engine.');
  counter('vllm:prompt_tokens', 'Number of prefill tokens processed.');
  counter('vllm:generation_tokens', 'Number of generation tokens processed.');
  counter('vllm:prefix_cache_queries', 'Prefix cache queries, in terms of number of queried tokens.');
  counter('vllm:prefix_cache_hits', 'Prefix cache hits, in terms of number of cached tokens.');
  counter('vllm:request_success', 'Count of successfully processed requests.', [
    ',finished_reason="stop"',
    ',finished_reason="length"',
    ',finished_reason="abort"',
  ]);
  const hist = (name: string, help: string, buckets: number[]) => {
    fam(name, 'histogram', help);
    for (let e = 0; e < engines; e++) {
      let c = 0;
      for (const b of buckets)
        out.push(
          `${name}_bucket{engine="${e}",le="${b.toFixed(1).replace(/\.0$/, '.0')}",${model}} ${(c += rnd()).toFixed(1)}`,
        );
      out.push(`${name}_bucket{engine="${e}",le="+Inf",${model}} ${c.toFixed(1)}`);
      out.push(`${name}_count{engine="${e}",${model}} ${c.toFixed(1)}`);
      out.push(`${name}_sum{engine="${e}",${model}} ${(c * 1.7).toFixed(4)}`);
    }
    fam(`${name}_created`, 'gauge', help);
    for (let e = 0; e < engines; e++) out.push(`${name}_created{engine="${e}",${model}} 1.7500000001e+09`);
  };
  hist('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', LAT);
  hist('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', LAT);
  hist('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', LAT);
  hist('vllm:request_queue_time_seconds', 'Time spent in WAITING phase for request.', LAT);
  hist('vllm:request_inference_time_seconds', 'Time spent in RUNNING phase for request.', LAT);
  hist('vllm:request_prefill_time_seconds', 'Time spent in PREFILL phase for request.', LAT);
  hist('vllm:request_decode_time_seconds', 'Time spent in DECODE phase for request.', LAT);
  hist('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', TOK);
  hist('vllm:request_generation_tokens', 'Number of generation tokens processed.', TOK);
  hist('vllm:iteration_tokens_total', 'Histogram of number of tokens per engine_step.', TOK);
  hist(
    'vllm:request_max_num_generation_tokens',
    'Histogram of maximum number of requested generation tokens.',
    TOK,
  );
  hist('vllm:request_params_n', 'Histogram of the n request parameter.', [1, 2, 5, 10, 20]);
  hist('vllm:request_params_max_tokens', 'Histogram of the max_tokens request parameter.', TOK);
  fam('vllm:cache_config_info', 'gauge', 'Information of the LLMEngine CacheConfig');
  out.push(
    `vllm:cache_config_info{block_size="16",cache_dtype="auto",enable_prefix_caching="True",engine="0",gpu_memory_utilization="0.9",num_gpu_blocks="53723"} 1.0`,
  );
  return out.join('\n') + '\n';
}

// ---- measurements --------------------------------------------------------------

interface Cell {
  body: string;
  bytes: number;
  endpoints: number;
  seconds: number;
  scrapes: number;
  errors: number;
  /** TCP connections opened over the whole cell (warm-up included); one per endpoint means keep-alive held. */
  connections: number;
  scrapesPerSecond: number;
  cpuMsPerSecond: number;
  cpuUsPerScrape: number;
  /** CPU of one poll round (every endpoint once). */
  cpuUsPerRound: number;
  /** `scraper`, or a bare loop `loop:<api>`. */
  client: string;
  /** Share of the CPU spent in the kernel (sockets, epoll, loopback TCP). */
  systemShare: number;
  /** Share of the CPU on the main (event loop) thread; the rest is V8's GC and compiler threads. */
  mainThreadShare: number | null;
  scanUsPerScrape: number;
  otherUsPerScrape: number;
}

const cpuMs = (u: NodeJS.CpuUsage) => (u.user + u.system) / 1000;

/** CPU ticks (utime + stime) of this process's main thread; undefined off Linux. */
function mainThreadTicks(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return undefined;
  }
}

/** CPU microseconds of `fn` per call, over at least `ms` of wall time. */
function perCall(fn: () => void, ms = 300): number {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
  }
  return (cpuMs(process.cpuUsage(c0)) * 1000) / n;
}

const WANTED = new Set([VLLM_WAITING, VLLM_RUNNING, VLLM_KV_USAGE, VLLM_KV_USAGE_OLD]);

/** The page scan as the scraper runs it (bytes in, signals out). */
function scanCost(body: Buffer): number {
  return perCall(() => signalsFromMetrics(body, 0));
}

/** The scraper's earlier path: decode the page, then the line parser keeping the wanted families. */
function oldPathCost(body: Buffer): number {
  return perCall(() => parsePromText(body.toString(), WANTED));
}

/** The line parser over every family (the cost of reading the whole page). */
function fullParseCost(body: Buffer): number {
  return perCall(() => parsePromText(body.toString()));
}

/** Something that polls the endpoints until stopped, counting polls and failures. */
interface Poller {
  readonly stats: { scrapes: number; errors: number };
  stop(): Promise<void>;
}

type LoopApi = 'agent' | 'dispatch' | 'request' | 'fetch';

/**
 * The scraper's shape without the scraper: one shared interval timer starts a
 * GET of every endpoint not still busy, on one keep-alive connection per
 * endpoint, and scans the page; only the HTTP client API differs.
 */
function loopPoller(api: LoopApi, eps: Endpoint[], intervalMs: number): Poller {
  const stats = { scrapes: 0, errors: 0 };
  const timeoutMs = Math.min(1_000, Math.max(intervalMs, 250));
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 1, connectTimeout: timeoutMs });
  const targets = eps.map((e) => {
    const origin = `http://${e.address}:${e.port}`;
    return {
      url: `${origin}/metrics`,
      busy: false,
      client: new Client(origin, { keepAliveTimeout: 10_000, connectTimeout: timeoutMs }),
      opts: {
        origin,
        path: '/metrics',
        method: 'GET',
        headers: ['accept', 'text/plain'],
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      } as Dispatcher.DispatchOptions,
    };
  });
  const done = (t: { busy: boolean }, err: unknown, page: Buffer | undefined) => {
    t.busy = false;
    if (err || !page) {
      stats.errors++;
      return;
    }
    try {
      signalsFromMetrics(page, Date.now());
    } catch {
      stats.errors++;
    }
  };
  const poll = (t: (typeof targets)[number]) => {
    t.busy = true;
    stats.scrapes++;
    if (api === 'agent') {
      // main's scraper before round two: a shared Agent, a controller-API handler.
      const chunks: Buffer[] = [];
      let status = 0;
      agent.dispatch(t.opts, {
        onRequestStart() {},
        onResponseStart(_c: Dispatcher.DispatchController, code: number) {
          status = code;
        },
        onResponseData(_c: Dispatcher.DispatchController, c: Buffer) {
          chunks.push(c);
        },
        onResponseEnd() {
          done(
            t,
            status === 200 ? undefined : status,
            chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
          );
        },
        onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error) {
          done(t, err, undefined);
        },
      });
    } else if (api === 'dispatch') {
      const chunks: Buffer[] = [];
      let status = 0;
      t.client.dispatch(t.opts, {
        onConnect() {},
        onHeaders(code: number) {
          status = code;
          return true;
        },
        onData(c: Buffer) {
          chunks.push(c);
          return true;
        },
        onComplete() {
          done(
            t,
            status === 200 ? undefined : status,
            chunks.length === 1 ? chunks[0] : Buffer.concat(chunks),
          );
        },
        onError(err: Error) {
          done(t, err, undefined);
        },
      });
    } else if (api === 'request') {
      undiciRequest(t.url, {
        dispatcher: t.client,
        headers: { accept: 'text/plain' },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      }).then(
        async (r) => {
          const page = Buffer.from(await r.body.arrayBuffer());
          done(t, r.statusCode === 200 ? undefined : r.statusCode, page);
        },
        (err: unknown) => done(t, err, undefined),
      );
    } else {
      undiciFetch(t.url, { dispatcher: t.client, headers: { accept: 'text/plain' } }).then(
        async (r) => {
          const page = Buffer.from(await r.arrayBuffer());
          done(t, r.status === 200 ? undefined : r.status, page);
        },
        (err: unknown) => done(t, err, undefined),
      );
    }
  };
  for (const t of targets) poll(t);
  const timer = setInterval(() => {
    for (const t of targets) if (!t.busy) poll(t);
  }, intervalMs);
  return {
    stats,
    async stop() {
      clearInterval(timer);
      await Promise.all(targets.map((t) => t.client.close()));
      await agent.close();
    },
  };
}

async function measure(
  servers: Servers,
  name: string,
  body: string,
  chunked: boolean,
  endpoints: number,
  seconds: number,
  intervalMs: number,
  scanUs: number,
  client: string,
): Promise<Cell> {
  const ports = await servers.serve({ body, count: endpoints, chunked });
  const eps: Endpoint[] = ports.map((port) => ({
    id: `127.0.0.1:${port}`,
    name: `ep-${port}`,
    address: '127.0.0.1',
    port,
    labels: {},
  }));
  let scraper: Poller;
  if (client.startsWith('loop:')) scraper = loopPoller(client.slice(5) as LoopApi, eps, intervalMs);
  else {
    const store = new MemoryStateStore();
    await store.replaceEndpoints(eps);
    const s = new MetricsScraper({
      store,
      logger: silentLogger(),
      intervalMs,
    });
    s.setEndpoints(eps);
    s.start();
    scraper = s;
  }
  try {
    await new Promise((r) => setTimeout(r, 1_000)); // connections up, JIT warm
    const s0 = { ...scraper.stats }; // a copy: a loop poller's stats object is live
    const c0 = process.cpuUsage();
    const m0 = mainThreadTicks();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, seconds * 1_000));
    const m1 = mainThreadTicks();
    const used = process.cpuUsage(c0);
    const cpu = cpuMs(used);
    const wall = (performance.now() - t0) / 1000;
    const s1 = scraper.stats;
    const scrapes = s1.scrapes - s0.scrapes;
    const perScrape = (cpu * 1000) / Math.max(1, scrapes);
    const connections = await servers.connections();
    return {
      body: name,
      bytes: Buffer.byteLength(body),
      endpoints,
      seconds: wall,
      scrapes,
      errors: s1.errors - s0.errors,
      connections,
      scrapesPerSecond: scrapes / wall,
      cpuMsPerSecond: cpu / wall,
      cpuUsPerScrape: perScrape,
      cpuUsPerRound: ((cpu * 1000) / wall) * (intervalMs / 1000),
      client,
      systemShare: used.system / Math.max(1, used.user + used.system),
      // /proc ticks are 10 ms: a rough split, good enough to say where the time goes.
      mainThreadShare:
        m0 === undefined || m1 === undefined ? null : Math.min(1, ((m1 - m0) * 10) / Math.max(1, cpu)),
      scanUsPerScrape: scanUs,
      otherUsPerScrape: Math.max(0, perScrape - scanUs),
    };
  } finally {
    await scraper.stop();
  }
}

function arg(args: string[], name: string, dflt: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : dflt;
}

export async function run(args: string[]): Promise<void> {
  const counts = arg(args, '--endpoints', '8,32,128').split(',').map(Number);
  const seconds = Number(arg(args, '--seconds', '3'));
  const intervalMs = Number(arg(args, '--interval', '50'));
  const which = arg(args, '--bodies', 'mock,large').split(',');
  const loops = arg(args, '--loops', '');
  const clients = loops ? loops.split(',').map((l) => `loop:${l}`) : ['scraper'];
  const say = (s: string) => process.stdout.write(s + '\n');

  const bodies: { name: string; text: string; chunked: boolean }[] = [];
  if (which.includes('mock')) bodies.push({ name: 'mock', text: await mockVllmPage(), chunked: true });
  if (which.includes('large')) bodies.push({ name: 'large', text: largeVllmPage(), chunked: false });

  say(
    'page scan, CPU us per page: the scraper (bytes) / decode + line parser, wanted families / all families',
  );
  const scans = new Map<string, number>();
  const scanRows: {
    body: string;
    bytes: number;
    lines: number;
    scanUs: number;
    oldPathUs: number;
    fullParseUs: number;
  }[] = [];
  for (const b of args.includes('--skip-scan') ? [] : bodies) {
    const buf = Buffer.from(b.text);
    const lines = b.text.split('\n').length;
    const scan = scanCost(buf);
    const old = oldPathCost(buf);
    const full = fullParseCost(buf);
    scans.set(b.name, scan);
    scanRows.push({
      body: b.name,
      bytes: buf.length,
      lines,
      scanUs: scan,
      oldPathUs: old,
      fullParseUs: full,
    });
    say(
      `  ${b.name.padEnd(6)} ${(buf.length / 1024).toFixed(1).padStart(6)} KB ${String(lines).padStart(5)} lines` +
        `  ${scan.toFixed(1).padStart(7)} / ${old.toFixed(1).padStart(7)} / ${full.toFixed(1).padStart(7)} us`,
    );
  }

  const servers = await Servers.start();
  const cells: Cell[] = [];
  try {
    say(`\nscraping every ${intervalMs} ms, ${seconds} s per cell (servers in a child process):`);
    say(
      'client           body   endpoints  scrapes/s  errors  conns  CPU ms/s  CPU us/round  CPU us/scrape  (scan + rest)  kernel  main thread',
    );
    for (const b of bodies) {
      for (const n of counts) {
        for (const client of clients) {
          const c = await measure(
            servers,
            b.name,
            b.text,
            b.chunked,
            n,
            seconds,
            intervalMs,
            scans.get(b.name) ?? 0,
            client,
          );
          cells.push(c);
          say(
            `${client.padEnd(16)} ${c.body.padEnd(6)} ${String(n).padStart(9)} ${c.scrapesPerSecond.toFixed(0).padStart(10)} ${String(c.errors).padStart(7)}` +
              ` ${String(c.connections).padStart(6)}` +
              ` ${c.cpuMsPerSecond.toFixed(1).padStart(9)} ${c.cpuUsPerRound.toFixed(0).padStart(13)} ${c.cpuUsPerScrape.toFixed(0).padStart(14)}` +
              `  (${c.scanUsPerScrape.toFixed(0)} + ${c.otherUsPerScrape.toFixed(0)})`.padEnd(15) +
              `${(c.systemShare * 100).toFixed(0)}%`.padEnd(8) +
              (c.mainThreadShare === null ? 'n/a' : `${(c.mainThreadShare * 100).toFixed(0)}%`),
          );
        }
      }
    }
  } finally {
    servers.close();
  }
  mkdirSync('bench-results', { recursive: true });
  writeFileSync('bench-results/scrape.json', JSON.stringify({ intervalMs, scans: scanRows, cells }, null, 2));
  say('\nwrote bench-results/scrape.json');
}
