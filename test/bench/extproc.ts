// `npm run bench -- extproc [--duration 1.5] [--sizes 2048,220000] [--conc 1,64]
//    [--no-floor] [--no-pin] [--no-upstream] [--cpu-prof DIR] [--node-flags '...']
//    [--in-process] [--profile FILE] [--floor-epp-codec]
//    [--transports grpc-js,http2] [--epp-transports LIST] [--floor-transports LIST]
//    [--floor-codecs stock,epp] [--epp-args '...'] [--baseline DIR]`
//
// Drives the real ext_proc gRPC path the way Envoy does: N concurrent
// Process streams over one HTTP/2 connection, each a whole exchange —
// request headers + body (FULL_DUPLEX_STREAMED, 16 KiB chunks), the EPP's
// header reply + body streamed back, then response headers and a small JSON
// body passed through, then the stream closed. Bodies of 2 KB, 32 KB,
// 220 KB and 1 MB; concurrency 1, 16, 64, 150.
// - req/s: whole exchanges per second.
// - added latency: time from sending the request headers until the EPP's
//   verdict has fully arrived (header reply + the last body chunk back) —
//   what the EPP adds in front of the model server.
// Two load shapes: a closed loop (each stream starts its next exchange at
// once: saturation, so latency there is mostly queueing, concurrency/rate),
// and 64 open streams whose simulated model server answers after 50 ms (the
// EPP busy but not saturated: its added latency as a gateway would see it).
// EPP CPU per exchange is read from /proc, so req/s per core is reported
// even on a shared, loaded machine.
// The floor (test/bench/floor/extproc-floor.ts): every cell runs first
// against an ext_proc server that does only the protocol (same runtime,
// grpc-js, proto loading and server options; fixed destination, chunks
// echoed), then against the EPP, with the same client in the same run, so
// "EPP / floor" is what routing costs over the protocol itself. Both servers
// are pinned to core 1 and the load generator to core 0 (taskset) unless
// --no-pin; the load average is printed per cell (the machine is shared).
// --floor-epp-codec gives the floor the EPP's hand-written reply serializer
// (by default it uses proto-loader's, as any grpc-js server would).
// --floor-codecs stock,epp runs a floor of each codec on every floor
// transport in the same run ("floor http2" and "floor http2+epp"); each EPP
// is then held against its transport's floor of the first codec listed, and
// its ratio to the +epp floor (the protocol alone, with the EPP's own codec
// and zero-copy body writes: nothing but what the EPP cannot avoid) is
// printed and kept as cpuRatioToEppCodecFloor.
// Transports (default grpc-js only): --transports grpc-js,http2 runs an EPP
// and a floor on each server transport (--extproc-transport; the floor's
// --transport), every one of them in every cell, floors first. "EPP/floor"
// holds each EPP against the floor on its own transport; "EPP/floor
// grpc-js" against grpc-js's floor, the reference of issue 15's absolute
// targets. --epp-transports / --floor-transports choose each side alone
// (the floors default to the EPPs' transports, so `--epp-transports http2`
// alone runs the http2 floor; an EPP whose transport has no floor is held
// against the first floor, and the table's transport columns say so).
// The EPP runs as its own process (`hermes-router epp`, default profile
// GIE's queue + kv-cache + prefix scorers over 8 fake vLLM /metrics servers),
// so the load generator does not share its event loop; `--in-process`
// builds it inside this process instead (no floor, no CPU figures).
// --epp-args '...' passes extra flags to every EPP (e.g. '--stream-idle-timeout 0').
// --baseline DIR runs, beside each EPP, one of the build in DIR (another
// worktree, built: its bin/hermes-router.js), labelled "EPP <transport> base",
// for an A/B in the same cells; the two run in turn, base first in even
// cells and second in odd ones, and "EPP / EPP base" is printed per cell.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GIE_DEFAULT_CONFIG_TEXT } from '../../src/config/endpoint-picker-config.js';
import { ExtProcClient } from '../../src/gateway/extproc-client.js';
import { buildEpp, type Epp } from '../../src/epp/build.js';
import { EPP_DEFAULTS } from '../../src/epp/options.js';
import { EXTPROC_TRANSPORTS, type ExtProcTransport } from '../../src/extproc/transports.js';
import { silentLogger } from '../../src/observability/logger.js';
import { freePort } from '../helpers/ports.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BODY_SIZES = [2_048, 32_768, 220_000, 1_000_000];
const CONCURRENCY = [1, 16, 64, 150];
const CHUNK = 16 * 1024;
const UPSTREAM_MS = 50;
/** Wait after the servers are ready before measuring anything. */
const SETTLE_MS = 3_000;

export interface ExtProcRow {
  bodyBytes: number;
  concurrency: number;
  /** Simulated model-server time between the verdict and the response (0: closed loop at saturation). */
  upstreamMs: number;
  requests: number;
  errors: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** EPP process CPU (user+sys) per exchange, from /proc; null in-process. */
  eppCpuMsPerReq: number | null;
  /** 1000 / eppCpuMsPerReq: what one core sustains, independent of machine load. */
  reqPerSecPerCore: number | null;
  /** eppCpuMsPerReq minus the idle background (metrics scraping) over the same time. */
  requestPathCpuMsPerReq: number | null;
}

/** CPU time (ms) a process has used, from /proc/<pid>/stat (Linux); undefined elsewhere. */
export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 (1-based) of the whole line: 12 and 13 here.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return undefined;
  }
}
const CLOCK_TICKS = 100;

export function chatBody(bytes: number, seed: number): Buffer {
  const head = JSON.stringify({
    model: 'bench-model',
    messages: [{ role: 'user', content: '' }],
    max_tokens: 16,
  });
  const fill = bytes - Buffer.byteLength(head);
  const text = `request ${seed} `.padEnd(Math.max(0, fill), 'lorem ipsum dolor sit amet ');
  return Buffer.from(
    JSON.stringify({ model: 'bench-model', messages: [{ role: 'user', content: text }], max_tokens: 16 }),
  );
}

export function chunks(b: Buffer, size = CHUNK): Buffer[] {
  const out: Buffer[] = [];
  for (let o = 0; o < b.length; o += size) out.push(b.subarray(o, o + size));
  return out;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const HEADERS: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/chat/completions'],
  [':authority', 'bench'],
  ['content-type', 'application/json'],
];
const ANSWER = Buffer.from(
  '{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":500,"completion_tokens":16}}',
);

export async function exchange(client: ExtProcClient, body: Buffer[], upstreamMs: number): Promise<number> {
  const ex = client.open();
  const t0 = performance.now();
  const v = await ex.sendRequest({ headers: HEADERS, body });
  const added = performance.now() - t0;
  if (v.kind !== 'continue') throw new Error(`EPP answered ${v.status}`);
  if (upstreamMs > 0) await new Promise((r) => setTimeout(r, upstreamMs));
  await ex.sendResponseHeaders([
    [':status', '200'],
    ['content-type', 'application/json'],
  ]);
  for await (const _ of ex.streamResponseBody([ANSWER])) {
    // drained
  }
  ex.end();
  await ex.done;
  return added;
}

/** One closed-loop cell; `chunkBytes` is the request body chunk size (default 16 KiB). */
export async function cell(
  client: ExtProcClient,
  bodyBytes: number,
  concurrency: number,
  upstreamMs: number,
  durationMs: number,
  eppPid: number | undefined,
  idleCpuMsPerSec: number | undefined,
  chunkBytes = CHUNK,
): Promise<ExtProcRow> {
  const bodies = Array.from({ length: 32 }, (_, i) => chunks(chatBody(bodyBytes, i), chunkBytes));
  const lat: number[] = [];
  let errors = 0;
  let n = 0;
  // Warm-up: JIT, connection, buffers.
  const warmUntil = performance.now() + Math.min(300, durationMs / 4);
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < warmUntil)
        await exchange(client, bodies[n++ % bodies.length]!, upstreamMs).catch(() => undefined);
    }),
  );
  const cpu0 = cpuMs(eppPid);
  const t0 = performance.now();
  const end = t0 + durationMs;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          lat.push(await exchange(client, bodies[n++ % bodies.length]!, upstreamMs));
        } catch {
          errors++;
        }
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu1 = cpuMs(eppPid);
  const cpuPerReq =
    cpu0 !== undefined && cpu1 !== undefined && lat.length > 0 ? (cpu1 - cpu0) / lat.length : null;
  const pathPerReq =
    cpuPerReq !== null && idleCpuMsPerSec !== undefined
      ? Math.max(0, cpuPerReq - (idleCpuMsPerSec * secs) / lat.length)
      : null;
  lat.sort((a, b) => a - b);
  return {
    bodyBytes,
    concurrency,
    upstreamMs,
    requests: lat.length,
    errors,
    reqPerSec: Math.round(lat.length / secs),
    p50Ms: Number(percentile(lat, 0.5).toFixed(3)),
    p99Ms: Number(percentile(lat, 0.99).toFixed(3)),
    eppCpuMsPerReq: cpuPerReq === null ? null : Number(cpuPerReq.toFixed(3)),
    reqPerSecPerCore: cpuPerReq ? Math.round(1000 / cpuPerReq) : null,
    requestPathCpuMsPerReq: pathPerReq === null ? null : Number(pathPerReq.toFixed(3)),
  };
}

export async function metricsServers(n: number): Promise<{ ports: number[]; close(): void }> {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const port = await freePort();
    const s = createServer((_req, res) => {
      res.end(
        `vllm:num_requests_waiting{model_name="bench-model"} ${i % 5}\n` +
          `vllm:num_requests_running{model_name="bench-model"} ${i}\n` +
          `vllm:kv_cache_usage_perc{model_name="bench-model"} ${(i % 10) / 10}\n`,
      );
    });
    await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
    servers.push(s);
    ports.push(port);
  }
  return {
    ports,
    close: () => {
      for (const s of servers) {
        s.close();
        s.closeAllConnections();
      }
    },
  };
}

export async function waitReady(adminPort: number, proc: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`epp exited with ${proc.exitCode}`);
    try {
      if ((await fetch(`http://127.0.0.1:${adminPort}/readyz`)).status === 200) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('epp not ready in 15 s');
}

/** A spawned EPP process for the benchmarks (plaintext gRPC on loopback, ready when started). */
export interface BenchEpp {
  grpcPort: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Run under `taskset -c <cpu>` (Linux, when taskset exists). */
  cpu?: number;
  /** Extra node flags (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

/** argv for a node child, pinned to one CPU when asked and possible. */
function nodeCommand(args: string[], opts: SpawnOptions): [string, string[]] {
  const node = [...(opts.nodeArgs ?? []), ...args];
  if (opts.cpu !== undefined && hasTaskset())
    return ['taskset', ['-c', String(opts.cpu), process.execPath, ...node]];
  return [process.execPath, node];
}

let tasksetFound: boolean | undefined;
export function hasTaskset(): boolean {
  if (tasksetFound === undefined) {
    try {
      execFileSync('taskset', ['-V'], { stdio: 'ignore' });
      tasksetFound = true;
    } catch {
      tasksetFound = false;
    }
  }
  return tasksetFound;
}

/**
 * Children still running. A bench killed mid-run (Ctrl-C, or stdout closed
 * by `| head`, which ends it on EPIPE) never reaches its `finally`; without
 * this its EPP and floor kept running, scraping, for as long as the machine.
 */
const liveChildren = new Set<ChildProcess>();
let exitGuardInstalled = false;

function killLiveChildren(): void {
  for (const p of liveChildren) p.kill('SIGKILL');
  liveChildren.clear();
}

function guardChild(proc: ChildProcess): void {
  liveChildren.add(proc);
  proc.once('exit', () => liveChildren.delete(proc));
  if (exitGuardInstalled) return;
  exitGuardInstalled = true;
  process.once('exit', killLiveChildren);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(signal, () => {
      killLiveChildren();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
}

/** Stops a spawned child: SIGTERM, SIGKILL after 5 s. */
function stopper(proc: ChildProcess): () => Promise<void> {
  guardChild(proc);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  return async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(t);
  };
}

export async function startBenchEpp(
  endpointsFile: string,
  configFile: string,
  root = ROOT,
  spawnOpts: SpawnOptions = {},
  eppArgs: string[] = [],
): Promise<BenchEpp> {
  const grpcPort = await freePort();
  const admin = await freePort();
  const [cmd, argv] = nodeCommand(
    [
      join(root, 'bin/hermes-router.js'),
      'epp',
      '--endpoints-file',
      endpointsFile,
      '--config-file',
      configFile,
      '--grpc-bind',
      '127.0.0.1',
      '--grpc-port',
      String(grpcPort),
      '--admin-port',
      String(admin),
      '--grpc-health-port',
      '-1',
      '--metrics-port',
      '-1',
      '--log-level',
      'warn',
      ...eppArgs,
    ],
    spawnOpts,
  );
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'inherit', 'inherit'] });
  const stop = stopper(proc);
  try {
    await waitReady(admin, proc);
  } catch (e) {
    await stop();
    throw e;
  }
  return { grpcPort, proc, stop };
}

/** The protocol-floor server (test/bench/floor/extproc-floor.ts) as its own process. */
export async function startBenchFloor(
  root = ROOT,
  spawnOpts: SpawnOptions = {},
  floorArgs: string[] = [],
): Promise<BenchEpp> {
  const grpcPort = await freePort();
  const [cmd, argv] = nodeCommand(
    [join(root, 'dist/test/bench/floor/extproc-floor.js'), '--port', String(grpcPort), ...floorArgs],
    spawnOpts,
  );
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = stopper(proc);
  try {
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('protocol floor not listening in 15 s')), 15_000);
      proc.once('exit', (code) => reject(new Error(`protocol floor exited with ${code}`)));
      proc.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('listening')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { grpcPort, proc, stop };
}

/** Pins this process (the load generator) to one CPU; false when not possible. */
function pinSelf(cpu: number): boolean {
  if (!hasTaskset()) return false;
  try {
    execFileSync('taskset', ['-a', '-pc', String(cpu), String(process.pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const load1 = () => Number(loadavg()[0]!.toFixed(2));

export interface FloorComparison {
  bodyBytes: number;
  concurrency: number;
  upstreamMs: number;
  /** The EPP's server transport in this comparison. */
  transport: ExtProcTransport;
  epp: ExtProcRow;
  /** The floor on the same transport when it ran, else the first floor that ran. */
  floor: ExtProcRow | null;
  floorTransport: ExtProcTransport | null;
  /** The floor held against ("floor http2", "floor grpc-js+epp", ...). */
  floorLabel: string | null;
  /** The grpc-js floor (the reference for issue 15's absolute targets), when it ran. */
  grpcJsFloor: ExtProcRow | null;
  /** EPP CPU per request / floor CPU per request. */
  cpuRatio: number | null;
  /** EPP CPU per request / the grpc-js floor's. */
  cpuRatioToGrpcJsFloor: number | null;
  /** EPP CPU per request / the floor's on its own transport with the EPP's codec (--floor-codecs ...,epp). */
  cpuRatioToEppCodecFloor: number | null;
  /**
   * The same without the idle EPP's background (scraping /metrics), which a
   * slow cell (1 MB bodies: a few req/s) would otherwise charge to each request.
   */
  requestPathCpuRatio: number | null;
  /** EPP added p50 minus the floor's: what routing adds on top of the protocol. */
  p50OverFloorMs: number | null;
  loadAverage1m: [number, number];
}

function ratio(a: number | null, b: number | null | undefined): number | null {
  return a !== null && b !== null && b !== undefined && b > 0 ? Number((a / b).toFixed(2)) : null;
}

function numList(v: string | undefined, dflt: number[]): number[] {
  return v === undefined ? dflt : v.split(',').map((x) => Number(x));
}

function rowText(label: string, row: ExtProcRow): string {
  return (
    `  ${label}  ${String(row.reqPerSec).padStart(6)} req/s  added p50 ${row.p50Ms.toFixed(2).padStart(7)} ms  ` +
    `p99 ${row.p99Ms.toFixed(2).padStart(7)} ms  ` +
    (row.eppCpuMsPerReq !== null
      ? `cpu ${row.eppCpuMsPerReq.toFixed(3)} ms/req (${row.reqPerSecPerCore} req/s/core; request path ${row.requestPathCpuMsPerReq?.toFixed(3)} ms)  `
      : '') +
    `(${row.requests} ok, ${row.errors} errors)\n`
  );
}

/** Background CPU (ms per second) of an idle server process. */
async function idleCpu(pid: number | undefined): Promise<number | undefined> {
  const c0 = cpuMs(pid);
  if (c0 === undefined) return undefined;
  await new Promise((r) => setTimeout(r, 1_000));
  return (cpuMs(pid) ?? c0) - c0;
}

function transportList(v: string, flag: string): ExtProcTransport[] {
  const out = v.split(',').map((t) => t.trim());
  for (const t of out)
    if (!(EXTPROC_TRANSPORTS as readonly string[]).includes(t))
      throw new Error(`${flag}: expected ${EXTPROC_TRANSPORTS.join(' | ')}, got "${t}"`);
  return out as ExtProcTransport[];
}

/**
 * The order the servers run a cell in: as started, except that each
 * --baseline EPP and the EPP beside it swap places every other cell, so
 * neither always runs right after the floors (or the other).
 */
function cellOrder(targets: Target[], cellIndex: number): Target[] {
  if (cellIndex % 2 === 0) return targets;
  const out = [...targets];
  for (let i = 0; i + 1 < out.length; i++)
    if (out[i]!.base && out[i + 1]!.kind === 'epp' && !out[i + 1]!.base) {
      [out[i], out[i + 1]] = [out[i + 1]!, out[i]!];
      i++;
    }
  return out;
}

/** One server under test in a run: a floor or the EPP, on one transport. */
interface Target {
  label: string;
  kind: 'floor' | 'epp';
  transport: ExtProcTransport;
  /** A floor's reply codec. */
  codec?: 'stock' | 'epp';
  /** An EPP of the --baseline build. */
  base?: boolean;
  server?: BenchEpp;
  client: ExtProcClient;
  pid: number | undefined;
  idleCpuMsPerSec: number | undefined;
}

export async function run(args: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const durationMs = Number(arg('--duration') ?? 1.5) * 1000;
  const inProcess = args.includes('--in-process');
  const withFloor = !inProcess && !args.includes('--no-floor');
  const sizes = numList(arg('--sizes'), BODY_SIZES);
  const concurrencies = numList(arg('--conc'), CONCURRENCY);
  const cpuProfDir = arg('--cpu-prof');
  // --transports sets both lists; --epp-transports / --floor-transports one each.
  const bothTransports = arg('--transports') ?? 'grpc-js';
  const eppTransports = transportList(arg('--epp-transports') ?? bothTransports, '--epp-transports');
  const floorTransports = withFloor
    ? transportList(
        // The floors default to the EPPs' transports: an EPP is held against the protocol on its own transport.
        arg('--floor-transports') ?? arg('--transports') ?? eppTransports.join(','),
        '--floor-transports',
      )
    : [];
  // Extra node flags for both servers (e.g. --node-flags=--max-semi-space-size=64), the same for both.
  const nodeFlags = (arg('--node-flags') ?? '').split(' ').filter((f) => f !== '');
  // Extra EPP flags, the same for every EPP (and the --baseline ones).
  const eppArgs = (arg('--epp-args') ?? '').split(' ').filter((f) => f !== '');
  const baselineRoot = arg('--baseline');
  if (baselineRoot && inProcess) throw new Error('--baseline runs EPP processes: not with --in-process');
  const pinned = !inProcess && !args.includes('--no-pin') && pinSelf(0);
  const serverSpawn: SpawnOptions = pinned ? { cpu: 1 } : {};
  const fakes = await metricsServers(8);
  const dir = mkdtempSync(join(tmpdir(), 'hermes-bench-extproc-'));
  const endpointsFile = join(dir, 'endpoints.yaml');
  writeFileSync(
    endpointsFile,
    'endpoints:\n' +
      fakes.ports.map((p, i) => `- name: vllm-${i}\n  address: 127.0.0.1\n  port: ${p}\n`).join(''),
  );
  const configFile = arg('--profile') ?? join(dir, 'gie-default.yaml');
  if (!arg('--profile')) writeFileSync(configFile, GIE_DEFAULT_CONFIG_TEXT);

  const targets: Target[] = [];
  let epp: Epp | undefined;
  const floorCodecs = (arg('--floor-codecs') ?? (args.includes('--floor-epp-codec') ? 'epp' : 'stock'))
    .split(',')
    .map((c) => c.trim());
  for (const c of floorCodecs)
    if (c !== 'stock' && c !== 'epp') throw new Error(`--floor-codecs: expected stock | epp, got "${c}"`);
  const floorCodec = floorCodecs.join(',');
  const floorLabel = (transport: string, codec: string) =>
    codec === 'stock' ? `floor ${transport}` : `floor ${transport}+epp`;
  const profDir = (name: string) =>
    cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', join(cpuProfDir, name)] : [];
  const clientOf = (port: number) => new ExtProcClient({ target: `127.0.0.1:${port}`, deadlineMs: 30_000 });
  try {
    for (const transport of floorTransports)
      for (const codec of floorCodecs as Array<'stock' | 'epp'>) {
        const label = floorLabel(transport, codec);
        const floor = await startBenchFloor(
          ROOT,
          { ...serverSpawn, nodeArgs: [...nodeFlags, ...profDir(label.replace(/[ +]/g, '-'))] },
          [...(codec === 'epp' ? ['--epp-codec'] : []), '--transport', transport],
        );
        targets.push({
          label,
          kind: 'floor',
          transport,
          codec,
          server: floor,
          client: clientOf(floor.grpcPort),
          pid: floor.proc.pid,
          idleCpuMsPerSec: undefined,
        });
      }
    if (inProcess) {
      epp = await buildEpp(
        {
          ...EPP_DEFAULTS,
          grpcPort: 0,
          grpcBind: '127.0.0.1',
          grpcHealthPort: undefined,
          metricsPort: undefined,
          adminPort: undefined,
          endpointsFile,
          configFile,
          maxRequestBodyBytes: 16 * 1024 * 1024,
          extprocTransport: eppTransports[0]!,
        },
        { logger: silentLogger() },
      );
      const port = (await epp.start()).grpc;
      targets.push({
        label: `EPP ${eppTransports[0]}`,
        kind: 'epp',
        transport: eppTransports[0]!,
        client: clientOf(port),
        pid: undefined,
        idleCpuMsPerSec: undefined,
      });
    } else {
      for (const transport of eppTransports)
        for (const base of baselineRoot ? [true, false] : [false]) {
          const name = base ? `epp-${transport}-base` : `epp-${transport}`;
          const server = await startBenchEpp(
            endpointsFile,
            configFile,
            base ? resolve(baselineRoot!) : ROOT,
            { ...serverSpawn, nodeArgs: [...nodeFlags, ...profDir(name)] },
            ['--extproc-transport', transport, ...eppArgs],
          );
          targets.push({
            label: base ? `EPP ${transport} base` : `EPP ${transport}`,
            kind: 'epp',
            transport,
            base,
            server,
            client: clientOf(server.grpcPort),
            pid: server.proc.pid,
            idleCpuMsPerSec: undefined,
          });
        }
    }
    for (const t of targets) await t.client.waitForReady();
    process.stdout.write(
      `load generator ${pinned ? 'pinned to cpu 0, EPP and floor to cpu 1' : 'not pinned'}; ` +
        `servers: ${targets.map((t) => t.label).join(', ')}; floor codec ${floorCodec}; load average ${loadavg()
          .map((x) => x.toFixed(2))
          .join(' ')}\n`,
    );
    // Background CPU of each idle server (the EPP scrapes 8 endpoints every 50 ms; a floor has none).
    // Measured once start-up has settled: the first seconds after ready cost 2-3x the steady
    // 30-45 ms/s (JIT, first scrapes), which inflated the idle figure of a faster-starting build
    // and left that work to its first cells.
    if (targets.some((t) => t.kind === 'epp' && t.pid !== undefined))
      await new Promise((r) => setTimeout(r, SETTLE_MS));
    for (const t of targets) {
      t.idleCpuMsPerSec = await idleCpu(t.pid);
      if (t.idleCpuMsPerSec !== undefined)
        process.stdout.write(`idle ${t.label}: ${t.idleCpuMsPerSec.toFixed(0)} ms CPU per second\n`);
    }
  } catch (e) {
    for (const t of targets) t.client.close();
    for (const t of targets) await t.server?.stop();
    if (epp) await epp.stop();
    fakes.close();
    throw e;
  }

  const rows: ExtProcRow[] = [];
  const comparisons: FloorComparison[] = [];
  const cells: Array<{
    bodyBytes: number;
    concurrency: number;
    upstreamMs: number;
    rows: Record<string, ExtProcRow>;
  }> = [];
  try {
    // Closed loop at saturation: throughput, and latency that is mostly queueing.
    const plan: Array<[number, number, number]> = [];
    for (const bytes of sizes) for (const c of concurrencies) plan.push([bytes, c, 0]);
    // 64 open streams whose model server takes UPSTREAM_MS: the EPP's added latency under load.
    if (!args.includes('--no-upstream')) for (const bytes of sizes) plan.push([bytes, 64, UPSTREAM_MS]);
    for (const [cellIndex, [bytes, c, up]] of plan.entries()) {
      const la0 = load1();
      process.stdout.write(
        `body ${String(bytes).padStart(7)} B  conc ${String(c).padStart(3)}  upstream ${String(up).padStart(3)} ms  load ${la0}\n`,
      );
      const byLabel: Record<string, ExtProcRow> = {};
      for (const t of cellOrder(targets, cellIndex)) {
        const row = await cell(t.client, bytes, c, up, durationMs, t.pid, t.idleCpuMsPerSec);
        byLabel[t.label] = row;
        if (t.kind === 'epp') rows.push(row);
        process.stdout.write(rowText(t.label.padEnd(13), row));
      }
      cells.push({ bodyBytes: bytes, concurrency: c, upstreamMs: up, rows: byLabel });
      for (const t of targets.filter((x) => x.kind === 'epp' && !x.base)) {
        const b = byLabel[`${t.label} base`];
        if (!b) continue;
        const row = byLabel[t.label]!;
        process.stdout.write(
          `  ${t.label} / ${t.label} base: cpu ${ratio(row.eppCpuMsPerReq, b.eppCpuMsPerReq) ?? '-'}x ` +
            `(request path ${ratio(row.requestPathCpuMsPerReq, b.requestPathCpuMsPerReq) ?? '-'}x), ` +
            `p50 ${ratio(row.p50Ms, b.p50Ms) ?? '-'}x, req/s ${ratio(row.reqPerSec, b.reqPerSec) ?? '-'}x\n`,
        );
      }
      const grpcJsFloor = byLabel['floor grpc-js'] ?? byLabel['floor grpc-js+epp'] ?? null;
      for (const t of targets.filter((x) => x.kind === 'epp')) {
        const row = byLabel[t.label]!;
        const floorTransport = floorTransports.includes(t.transport)
          ? t.transport
          : (floorTransports[0] ?? null);
        const f = floorTransport ? byLabel[floorLabel(floorTransport, floorCodecs[0]!)]! : null;
        const eppCodecFloor = floorTransports.includes(t.transport)
          ? (byLabel[floorLabel(t.transport, 'epp')] ?? null)
          : null;
        const cmp: FloorComparison = {
          bodyBytes: bytes,
          concurrency: c,
          upstreamMs: up,
          transport: t.transport,
          epp: row,
          floor: f,
          floorTransport,
          floorLabel: floorTransport ? floorLabel(floorTransport, floorCodecs[0]!) : null,
          grpcJsFloor,
          cpuRatio: ratio(row.eppCpuMsPerReq, f?.eppCpuMsPerReq),
          cpuRatioToGrpcJsFloor: ratio(row.eppCpuMsPerReq, grpcJsFloor?.eppCpuMsPerReq),
          cpuRatioToEppCodecFloor: ratio(row.eppCpuMsPerReq, eppCodecFloor?.eppCpuMsPerReq),
          requestPathCpuRatio: ratio(row.requestPathCpuMsPerReq, f?.eppCpuMsPerReq),
          p50OverFloorMs: f ? Number((row.p50Ms - f.p50Ms).toFixed(3)) : null,
          loadAverage1m: [la0, load1()],
        };
        comparisons.push(cmp);
        if (f)
          process.stdout.write(
            `  ${t.label} / ${cmp.floorLabel}: cpu ${cmp.cpuRatio ?? '-'}x (request path ${cmp.requestPathCpuRatio ?? '-'}x), p50 ${ratio(row.p50Ms, f.p50Ms) ?? '-'}x (+${cmp.p50OverFloorMs} ms), ` +
              `p99 ${ratio(row.p99Ms, f.p99Ms) ?? '-'}x, req/s ${ratio(row.reqPerSec, f.reqPerSec) ?? '-'}x` +
              (grpcJsFloor && floorTransport !== 'grpc-js'
                ? `; cpu / floor grpc-js ${cmp.cpuRatioToGrpcJsFloor ?? '-'}x`
                : '') +
              (eppCodecFloor && eppCodecFloor !== f
                ? `; cpu / ${floorLabel(t.transport, 'epp')} ${cmp.cpuRatioToEppCodecFloor ?? '-'}x`
                : '') +
              '\n',
          );
      }
    }
  } finally {
    for (const t of targets) t.client.close();
    if (epp) await epp.stop();
    for (const t of targets) await t.server?.stop();
    fakes.close();
  }
  if (comparisons.some((c) => c.floor)) {
    process.stdout.write(
      '\n| body | conc | up ms | transport | EPP cpu ms/req | floor | floor cpu ms/req | cpu EPP/floor | cpu EPP/floor grpc-js | cpu EPP/floor +epp | request path/floor | EPP p50 / p99 ms | floor p50 / p99 ms | EPP req/s | floor req/s | EPP req/s/core | floor req/s/core | load 1m |\n' +
        '| ---- | ---- | ----- | --------- | -------------- | ----- | ---------------- | ------------- | --------------------- | ------------------ | ------------------ | ---------------- | ------------------ | --------- | ----------- | -------------- | ---------------- | ------- |\n',
    );
    for (const c of comparisons) {
      const f = c.floor;
      process.stdout.write(
        `| ${c.bodyBytes} | ${c.concurrency} | ${c.upstreamMs} | ${c.transport} | ${c.epp.eppCpuMsPerReq ?? '-'} | ${c.floorLabel ?? '-'} | ${f?.eppCpuMsPerReq ?? '-'} | ` +
          `${c.cpuRatio ?? '-'} | ${c.cpuRatioToGrpcJsFloor ?? '-'} | ${c.cpuRatioToEppCodecFloor ?? '-'} | ${c.requestPathCpuRatio ?? '-'} | ${c.epp.p50Ms} / ${c.epp.p99Ms} | ${f ? `${f.p50Ms} / ${f.p99Ms}` : '-'} | ` +
          `${c.epp.reqPerSec} | ${f?.reqPerSec ?? '-'} | ${c.epp.reqPerSecPerCore ?? '-'} | ${f?.reqPerSecPerCore ?? '-'} | ${c.loadAverage1m.join('-')} |\n`,
      );
    }
  }
  // Every server side by side, per cell: CPU ms per request (req/s per core), added p50.
  if (targets.length > 1) {
    const labels = targets.map((t) => t.label);
    process.stdout.write(
      `\n| body | conc | up ms | ${labels.map((l) => `${l} cpu ms/req (req/s/core), p50 ms`).join(' | ')} |\n` +
        `| ---- | ---- | ----- | ${labels.map(() => '---').join(' | ')} |\n`,
    );
    for (const c of cells)
      process.stdout.write(
        `| ${c.bodyBytes} | ${c.concurrency} | ${c.upstreamMs} | ${labels
          .map((l) => {
            const r = c.rows[l]!;
            return `${r.eppCpuMsPerReq ?? '-'} (${r.reqPerSecPerCore ?? '-'}), ${r.p50Ms}`;
          })
          .join(' | ')} |\n`,
      );
  }
  mkdirSync(join(ROOT, 'bench-results'), { recursive: true });
  const out = {
    benchmark: 'extproc',
    mode: inProcess ? 'in-process' : 'epp process',
    pinned,
    requestBodyMode: 'FULL_DUPLEX_STREAMED',
    floorCodec,
    eppTransports,
    floorTransports,
    eppArgs,
    baseline: baselineRoot ?? null,
    chunkBytes: CHUNK,
    durationSecPerCell: durationMs / 1000,
    profile: arg('--profile') ?? 'GIE default (queue 2, kv-cache 2, prefix 3, max-score-picker)',
    endpoints: fakes.ports.length,
    idleCpuMsPerSec: Object.fromEntries(targets.map((t) => [t.label, t.idleCpuMsPerSec ?? null])),
    loadAverage: loadavg(),
    node: process.version,
    rows,
    comparisons,
    cells,
  };
  writeFileSync(join(ROOT, 'bench-results/extproc.json'), JSON.stringify(out, null, 2) + '\n');
  process.stdout.write('wrote bench-results/extproc.json\n');
}
