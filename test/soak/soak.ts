// `npm run soak [-- --duration 3m --rate 40 --gateway-share 0.5]`: a bounded
// loopback soak. Starts mock-vllm servers, an EPP (the GIE default example
// profile, in-memory state) and gateway-dev, then sends a steady request
// rate for --duration, split between
//  - the raw ext_proc path: this script acts as the gateway (ext_proc
//    request phase -> POST to the chosen mock-vllm -> the response streamed
//    back through the ext_proc response phase), and
//  - gateway-dev (HTTP in, the same ext_proc dance inside it).
// Samples every second: RSS of the EPP and gateway-dev (/proc), the EPP's
// responsiveness (round trip of its admin /healthz, a proxy for its event
// loop lag: the EPP exports no nodejs_eventloop_lag metric) and this
// driver's own event-loop delay. Prints requests, errors (must be 0),
// latency p50/p99 and RSS growth; writes bench-results/soak.json; exits 1
// on any error.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { destinationOf, type ExtProcClient } from '../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp } from '../helpers/epp.js';
import { freePort } from '../helpers/ports.js';
import { REPO_ROOT, spawnFn, stopAllSpawned, type SpawnedFn } from '../helpers/spawn.js';

interface Args {
  durationMs: number;
  rate: number;
  gatewayShare: number;
  servers: number;
  out: string;
}

function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s.trim());
  if (!m) throw new Error(`--duration: expected e.g. 90s, 3m or 500ms, got "${s}"`);
  const n = Number(m[1]);
  return m[2] === 'ms' ? n : m[2] === 'm' ? n * 60_000 : n * 1_000;
}

function parseArgs(argv: string[]): Args {
  const a: Args = {
    durationMs: 180_000,
    rate: 40,
    gatewayShare: 0.5,
    servers: 3,
    out: join(REPO_ROOT, 'bench-results', 'soak.json'),
  };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const v = argv[i + 1];
    const need = () => {
      if (v === undefined) throw new Error(`${k} needs a value`);
      i++;
      return v;
    };
    if (k === '--duration') a.durationMs = parseDuration(need());
    else if (k === '--rate') a.rate = Number(need());
    else if (k === '--gateway-share') a.gatewayShare = Number(need());
    else if (k === '--servers') a.servers = Number(need());
    else if (k === '--out') a.out = need();
    else if (k === '--help' || k === '-h') {
      process.stdout.write(
        'npm run soak -- [--duration 3m] [--rate 40 req/s] [--gateway-share 0.5] [--servers 3] [--out bench-results/soak.json]\n',
      );
      process.exit(0);
    } else throw new Error(`unknown flag ${k}`);
  }
  if (!(a.rate > 0 && a.rate <= 2_000)) throw new Error('--rate: expected 0 < rate <= 2000');
  if (!(a.gatewayShare >= 0 && a.gatewayShare <= 1)) throw new Error('--gateway-share: expected 0..1');
  return a;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

const MB = 1024 * 1024;
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// A small pool of shared system prompts, so the prefix scorer has work to do.
const SYSTEM = Array.from(
  { length: 8 },
  (_, i) => `You are assistant ${i}. ${'Follow the house style. '.repeat(20)}`,
);
function body(i: number): string {
  return JSON.stringify({
    model: 'mock-model',
    messages: [
      { role: 'system', content: SYSTEM[i % SYSTEM.length] },
      { role: 'user', content: `question ${i}: ${'why '.repeat(i % 50)}` },
    ],
    max_tokens: 8,
    stream: i % 2 === 0,
  });
}

const upstream = new Agent({ keepAliveTimeout: 10_000, connections: 256 });

/** The raw ext_proc path: this process plays the gateway. */
async function viaExtProc(client: ExtProcClient, i: number): Promise<void> {
  const ex = client.open();
  const text = body(i);
  const v = await ex.sendRequest({
    headers: [
      [':method', 'POST'],
      [':path', '/v1/chat/completions'],
      ['content-type', 'application/json'],
    ],
    body: Buffer.from(text),
  });
  if (v.kind === 'immediate') {
    ex.end();
    throw new Error(`EPP answered ${v.status}: ${v.body.toString().slice(0, 200)}`);
  }
  const dest = destinationOf(v)[0];
  if (!dest) throw new Error('EPP named no destination');
  const r = await request(`http://${dest}/v1/chat/completions`, {
    method: 'POST',
    body: v.body,
    headers: { 'content-type': 'application/json' },
    dispatcher: upstream,
  });
  const respHeaders: Array<[string, string]> = [[':status', String(r.statusCode)]];
  for (const [k, val] of Object.entries(r.headers)) if (typeof val === 'string') respHeaders.push([k, val]);
  await ex.sendResponseHeaders(respHeaders);
  let bytes = 0;
  for await (const c of ex.streamResponseBody(r.body as AsyncIterable<Buffer>)) bytes += c.length;
  ex.end();
  await ex.done;
  if (r.statusCode !== 200) throw new Error(`model server answered ${r.statusCode}`);
  if (bytes === 0) throw new Error('empty response body');
}

async function viaGateway(url: string, i: number): Promise<void> {
  const r = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    body: body(i),
    headers: { 'content-type': 'application/json' },
    dispatcher: upstream,
  });
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`gateway-dev answered ${r.statusCode}: ${text.slice(0, 200)}`);
  if (i % 2 === 0 && !text.includes('[DONE]')) throw new Error('stream ended without [DONE]');
}

export async function run(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  const procs: SpawnedFn[] = [];
  let exitCode = 0;
  try {
    const vllmPorts = await Promise.all(Array.from({ length: args.servers }, () => freePort()));
    const servers = await Promise.all(
      vllmPorts.map((p) =>
        spawnFn(
          'mock-vllm',
          [
            '--host',
            '127.0.0.1',
            '--port',
            String(p),
            '--time-scale',
            '20',
            '--decode-ms-per-token',
            '20',
            '--max-num-seqs',
            '64',
            '--log-level',
            'warn',
          ],
          { ready: { http: `http://127.0.0.1:${p}/health` } },
        ),
      ),
    );
    procs.push(...servers);
    const epp = await startEpp({
      endpoints: endpointsYaml(vllmPorts.map((port, i) => ({ name: `vllm-${i}`, port }))),
      args: [
        '--config-file',
        join(REPO_ROOT, 'examples', 'profiles', 'epp-gie-default.yaml'),
        '--log-level',
        'warn',
      ],
    });
    procs.push(epp.proc);
    const gw = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gw}`;
    const gateway = await spawnFn(
      'gateway-dev',
      [
        '--host',
        '127.0.0.1',
        '--port',
        String(gw),
        '--epp',
        `127.0.0.1:${epp.grpcPort}`,
        '--log-level',
        'warn',
      ],
      { ready: { http: `${gatewayUrl}/_gateway/healthz` } },
    );
    procs.push(gateway);
    const client = epp.client;

    // Warm-up (JIT, connection pools) before the first RSS sample.
    for (let i = 0; i < 50; i++) await Promise.all([viaExtProc(client, i), viaGateway(gatewayUrl, i)]);

    const lat: { raw: number[]; gateway: number[] } = { raw: [], gateway: [] };
    const errors: string[] = [];
    let sent = 0;
    let done = 0;
    const samples: Array<{
      t: number;
      eppRssMb: number;
      gatewayRssMb: number;
      eppHealthMs: number;
      inflight: number;
    }> = [];
    const driverLag = monitorEventLoopDelay({ resolution: 10 });
    driverLag.enable();
    const healthRtt: number[] = [];

    const start = performance.now();
    const endAt = start + args.durationMs;
    const rss0 = { epp: epp.proc.rssBytes(), gateway: gateway.rssBytes() };

    const sampler = setInterval(() => {
      const t0 = performance.now();
      void fetch(`${epp.adminUrl}/healthz`)
        .then((r) => r.arrayBuffer())
        .then(() => {
          const ms = performance.now() - t0;
          healthRtt.push(ms);
          samples.push({
            t: round((t0 - start) / 1000, 1),
            eppRssMb: round(epp.proc.rssBytes() / MB, 1),
            gatewayRssMb: round(gateway.rssBytes() / MB, 1),
            eppHealthMs: round(ms),
            inflight: sent - done,
          });
        })
        .catch((e: Error) => errors.push(`healthz: ${e.message}`));
    }, 1_000);

    const progress = setInterval(() => {
      const s = samples[samples.length - 1];
      process.stdout.write(
        `  t=${Math.round((performance.now() - start) / 1000)}s sent=${sent} done=${done} errors=${errors.length} eppRss=${s?.eppRssMb ?? '?'}MB\n`,
      );
    }, 15_000);

    // Open-loop arrivals at a steady rate: request i starts at start + i/rate.
    const interval = 1000 / args.rate;
    const pending = new Set<Promise<void>>();
    let i = 0;
    while (performance.now() < endAt) {
      const due = start + i * interval;
      const wait = due - performance.now();
      if (wait > 1) await new Promise((r) => setTimeout(r, wait));
      const n = i++;
      const viaGw = (n * 7919) % 1000 < args.gatewayShare * 1000;
      const t0 = performance.now();
      sent++;
      const p = (viaGw ? viaGateway(gatewayUrl, n) : viaExtProc(client, n))
        .then(() => void (viaGw ? lat.gateway : lat.raw).push(performance.now() - t0))
        .catch((e: Error) => void errors.push(`${viaGw ? 'gateway' : 'raw'} #${n}: ${e.message}`))
        .finally(() => {
          done++;
          pending.delete(p);
        });
      pending.add(p);
    }
    await Promise.all(pending);
    clearInterval(sampler);
    clearInterval(progress);
    driverLag.disable();
    const elapsedS = (performance.now() - start) / 1000;
    const rss1 = { epp: epp.proc.rssBytes(), gateway: gateway.rssBytes() };
    const eppMax = Math.max(...samples.map((s) => s.eppRssMb));
    // Growth judged on the second half vs the first half's median, which a one-off allocation at start does not skew.
    const half = Math.floor(samples.length / 2);
    const med = (xs: number[]) =>
      quantile(
        [...xs].sort((p, q) => p - q),
        0.5,
      );
    const eppRssFirstHalfMb = med(samples.slice(0, half).map((s) => s.eppRssMb));
    const eppRssSecondHalfMb = med(samples.slice(half).map((s) => s.eppRssMb));

    const stats = (xs: number[]) => {
      const s = [...xs].sort((p, q) => p - q);
      return {
        count: s.length,
        p50Ms: round(quantile(s, 0.5)),
        p99Ms: round(quantile(s, 0.99)),
        maxMs: round(s[s.length - 1] ?? 0),
      };
    };
    const all = [...lat.raw, ...lat.gateway];
    const result = {
      startedAt: new Date(Date.now() - elapsedS * 1000).toISOString(),
      durationS: round(elapsedS, 1),
      targetRate: args.rate,
      achievedRate: round(done / elapsedS),
      servers: args.servers,
      profile: 'epp-gie-default',
      requests: done,
      errors: errors.length,
      errorSamples: errors.slice(0, 20),
      latency: { all: stats(all), raw: stats(lat.raw), gateway: stats(lat.gateway) },
      rssMb: {
        epp: {
          start: round(rss0.epp / MB, 1),
          end: round(rss1.epp / MB, 1),
          max: eppMax,
          growth: round((rss1.epp - rss0.epp) / MB, 1),
          firstHalfMedian: eppRssFirstHalfMb,
          secondHalfMedian: eppRssSecondHalfMb,
        },
        gateway: {
          start: round(rss0.gateway / MB, 1),
          end: round(rss1.gateway / MB, 1),
          growth: round((rss1.gateway - rss0.gateway) / MB, 1),
        },
      },
      eppHealthRttMs: stats(healthRtt),
      driverEventLoopDelayMs: {
        p50: round(driverLag.percentile(50) / 1e6),
        p99: round(driverLag.percentile(99) / 1e6),
        max: round(driverLag.max / 1e6),
      },
      samples,
    };
    mkdirSync(join(args.out, '..'), { recursive: true });
    writeFileSync(args.out, JSON.stringify(result, null, 2) + '\n');
    const line = (k: string, v: string) => process.stdout.write(`${k.padEnd(28)} ${v}\n`);
    process.stdout.write('\nsoak results\n');
    line('duration', `${result.durationS} s at ${args.rate} req/s (achieved ${result.achievedRate})`);
    line('requests', `${done} (raw ext_proc ${lat.raw.length}, gateway-dev ${lat.gateway.length})`);
    line('errors', String(errors.length));
    line('latency all p50 / p99', `${result.latency.all.p50Ms} / ${result.latency.all.p99Ms} ms`);
    line('latency raw p50 / p99', `${result.latency.raw.p50Ms} / ${result.latency.raw.p99Ms} ms`);
    line('latency gateway p50 / p99', `${result.latency.gateway.p50Ms} / ${result.latency.gateway.p99Ms} ms`);
    line(
      'EPP RSS start/end/max',
      `${result.rssMb.epp.start} / ${result.rssMb.epp.end} / ${eppMax} MB (growth ${result.rssMb.epp.growth} MB; half medians ${eppRssFirstHalfMb} -> ${eppRssSecondHalfMb})`,
    );
    line('gateway-dev RSS start/end', `${result.rssMb.gateway.start} / ${result.rssMb.gateway.end} MB`);
    line(
      'EPP /healthz RTT p50/p99/max',
      `${result.eppHealthRttMs.p50Ms} / ${result.eppHealthRttMs.p99Ms} / ${result.eppHealthRttMs.maxMs} ms`,
    );
    line(
      'driver loop delay p99/max',
      `${result.driverEventLoopDelayMs.p99} / ${result.driverEventLoopDelayMs.max} ms`,
    );
    line('written', args.out);
    if (errors.length > 0) {
      process.stdout.write(`first errors:\n  ${errors.slice(0, 5).join('\n  ')}\n`);
      exitCode = 1;
    }
    for (const p of procs)
      if (!p.alive()) {
        process.stdout.write(`${p.name} died during the soak:\n${p.output().slice(-2000)}\n`);
        exitCode = 1;
      }
  } finally {
    await stopAllSpawned();
    await upstream.close();
  }
  process.exitCode = exitCode;
}

// Run directly (npm run soak), not when imported.
if (process.argv[1] && /soak\.js$/.test(process.argv[1])) {
  run(process.argv.slice(2)).catch((e: Error) => {
    process.stderr.write(`soak: ${e.message}\n`);
    void stopAllSpawned().finally(() => process.exit(2));
  });
}
