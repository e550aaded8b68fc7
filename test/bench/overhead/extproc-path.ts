// Section 2: the ext_proc path with real gRPC streams against a spawned
// `hermes-router epp` (GIE default profile over 8 fake vLLM /metrics
// servers), request bodies FULL_DUPLEX_STREAMED in 64 KiB chunks. Reuses
// the ext_proc benchmark's pieces (test/bench/extproc.ts): the exchange
// (headers + body, the EPP's header reply + body streamed back, response
// headers + body passed through), the closed-loop cell and /proc CPU reading.
//   closed loop: C streams, each starting its next exchange at once. This
//     is saturation: req/s is throughput, latency is mostly queueing
//     (roughly C / throughput), not the EPP's cost per request.
//   open loop: arrivals at a fixed rate regardless of answers; latency from
//     the scheduled arrival to the verdict (no coordinated omission). This is
//     the overhead a gateway sees while the EPP is not saturated.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GIE_DEFAULT_CONFIG_TEXT } from '../../../src/config/endpoint-picker-config.js';
import { ExtProcClient } from '../../../src/gateway/extproc-client.js';
import {
  cell,
  chatBody,
  chunks,
  cpuMs,
  exchange,
  metricsServers,
  startBenchEpp,
  type BenchEpp,
  type ExtProcRow,
} from '../extproc.js';
import { formatTable, noiseSummary, pct, round, runs, say, spread } from './report.js';

export const CHUNK_BYTES = 64 * 1024;

export interface ExtProcPathOptions {
  root: string;
  bodies: number[];
  concurrency: number[];
  openLoopRates: number[];
  closedDurationMs: number;
  openDurationMs: number;
  repeats: number;
}

export interface ClosedRow {
  bodyBytes: number;
  concurrency: number;
  reqPerSec: number[];
  p50Ms: number[];
  p99Ms: number[];
  eppCpuMsPerReq: Array<number | null>;
  /** EPP CPU per request minus the idle EPP's background (metrics scraping) over the same time. */
  requestPathCpuMsPerReq: Array<number | null>;
  errors: number[];
}

export interface OpenRun {
  targetRate: number;
  achievedRate: number;
  requests: number;
  errors: number;
  /** Scheduled arrival -> verdict: what a gateway waits for. */
  p50Ms: number;
  p99Ms: number;
  /** From the moment the exchange actually started (the load generator's own lag left out). */
  sentP50Ms: number;
  sentP99Ms: number;
  /** How late the load generator started exchanges (its own lag, included in p50Ms/p99Ms). */
  startLagP99Ms: number;
  eppCpuMsPerReq: number | null;
  /** eppCpuMsPerReq minus the idle EPP's background over the same time. */
  requestPathCpuMsPerReq: number | null;
}

export interface OpenRow {
  bodyBytes: number;
  targetRate: number;
  runs: OpenRun[];
}

export interface ExtProcSection {
  profile: string;
  endpoints: number;
  chunkBytes: number;
  requestBodyMode: 'FULL_DUPLEX_STREAMED';
  idleEppCpuMsPerSec: number | null;
  closedLoop: ClosedRow[];
  openLoop: OpenRow[];
  noise: {
    closedReqPerSec: ReturnType<typeof noiseSummary>;
    closedP50: ReturnType<typeof noiseSummary>;
    openP50: ReturnType<typeof noiseSummary>;
    openP99: ReturnType<typeof noiseSummary>;
  };
}

async function openLoop(
  client: ExtProcClient,
  bodyBytes: number,
  rate: number,
  durationMs: number,
  pid: number | undefined,
  idleCpuMsPerSec: number | undefined,
): Promise<OpenRun> {
  const bodies = Array.from({ length: 32 }, (_, i) => chunks(chatBody(bodyBytes, i), CHUNK_BYTES));
  const drive = async (ms: number, record: boolean) => {
    const lat: number[] = [];
    const lag: number[] = [];
    const fromSend: number[] = [];
    let errors = 0;
    const total = Math.floor((rate * ms) / 1000);
    const pending: Array<Promise<void>> = [];
    const start = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        const scheduled = start + (sent * 1000) / rate;
        const body = bodies[sent % bodies.length]!;
        pending.push(
          (async () => {
            const l = performance.now() - scheduled;
            try {
              const added = await exchange(client, body, 0);
              if (record) {
                lat.push(l + added);
                lag.push(l);
                fromSend.push(added);
              }
            } catch {
              errors++;
            }
          })(),
        );
      }
      // 1 ms timer ticks: arrivals due in between go out together on the next tick (counted as lag).
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(pending);
    return { lat, lag, fromSend, errors, secs: (performance.now() - start) / 1000 };
  };
  await drive(Math.min(500, durationMs / 3), false);
  const cpu0 = cpuMs(pid);
  const r = await drive(durationMs, true);
  const cpu1 = cpuMs(pid);
  r.lat.sort((a, b) => a - b);
  r.lag.sort((a, b) => a - b);
  r.fromSend.sort((a, b) => a - b);
  const n = r.lat.length;
  const cpuPerReq = cpu0 !== undefined && cpu1 !== undefined && n > 0 ? (cpu1 - cpu0) / n : null;
  return {
    targetRate: rate,
    achievedRate: Math.round(n / r.secs),
    requests: n,
    errors: r.errors,
    p50Ms: round(pct(r.lat, 50), 3),
    p99Ms: round(pct(r.lat, 99), 3),
    sentP50Ms: round(pct(r.fromSend, 50), 3),
    sentP99Ms: round(pct(r.fromSend, 99), 3),
    startLagP99Ms: round(pct(r.lag, 99), 3),
    eppCpuMsPerReq: cpuPerReq === null ? null : round(cpuPerReq, 3),
    requestPathCpuMsPerReq:
      cpuPerReq === null || idleCpuMsPerSec === undefined
        ? null
        : round(Math.max(0, cpuPerReq - (idleCpuMsPerSec * r.secs) / n), 3),
  };
}

export async function extprocSection(o: ExtProcPathOptions): Promise<ExtProcSection> {
  say(
    `\n## 2. ext_proc path: spawned EPP (GIE default profile, 8 fake model servers), FULL_DUPLEX_STREAMED, ${CHUNK_BYTES / 1024} KiB chunks, ${o.repeats} run(s)`,
  );
  const fakes = await metricsServers(8);
  const dir = mkdtempSync(join(tmpdir(), 'hermes-bench-overhead-'));
  let epp: BenchEpp | undefined;
  let client: ExtProcClient | undefined;
  try {
    const endpointsFile = join(dir, 'endpoints.yaml');
    writeFileSync(
      endpointsFile,
      'endpoints:\n' +
        fakes.ports.map((p, i) => `- name: vllm-${i}\n  address: 127.0.0.1\n  port: ${p}\n`).join(''),
    );
    const configFile = join(dir, 'gie-default.yaml');
    writeFileSync(configFile, GIE_DEFAULT_CONFIG_TEXT);
    epp = await startBenchEpp(endpointsFile, configFile, o.root);
    client = new ExtProcClient({ target: `127.0.0.1:${epp.grpcPort}`, deadlineMs: 30_000 });
    await client.waitForReady();
    const pid = epp.proc.pid;
    // The idle EPP's background CPU (scraping 8 endpoints), subtracted for the request-path figure.
    let idle: number | undefined;
    const i0 = cpuMs(pid);
    if (i0 !== undefined) {
      await new Promise((r) => setTimeout(r, 1_000));
      idle = (cpuMs(pid) ?? i0) - i0;
      say(`idle EPP: ${idle.toFixed(0)} ms CPU per second (metrics scraping)`);
    }
    // Warm the EPP up (JIT, buffers) before anything counts: its first requests run much slower.
    await cell(client, 2_048, 16, 0, 1_000, undefined, undefined, CHUNK_BYTES);
    const closed: ExtProcRow[][] = [];
    const open: OpenRun[][] = [];
    for (let k = 0; k < o.repeats; k++) {
      const cr: ExtProcRow[] = [];
      for (const bytes of o.bodies) {
        for (const c of o.concurrency) {
          const row = await cell(client, bytes, c, 0, o.closedDurationMs, pid, idle, CHUNK_BYTES);
          cr.push(row);
          say(
            `  run ${k + 1} closed  body ${String(bytes).padStart(6)} B conc ${String(c).padStart(2)}: ${String(row.reqPerSec).padStart(5)} req/s  p50 ${row.p50Ms.toFixed(2)} ms  p99 ${row.p99Ms.toFixed(2)} ms  EPP ${row.eppCpuMsPerReq?.toFixed(3) ?? '-'} ms CPU/req  (${row.errors} errors)`,
          );
        }
      }
      closed.push(cr);
      const or: OpenRun[] = [];
      for (const rate of o.openLoopRates) {
        const r = await openLoop(client, 2_048, rate, o.openDurationMs, pid, idle);
        or.push(r);
        say(
          `  run ${k + 1} open    body   2048 B ${String(rate).padStart(4)}/s: achieved ${r.achievedRate}/s  p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms  (from send: p50 ${r.sentP50Ms.toFixed(2)} p99 ${r.sentP99Ms.toFixed(2)}; generator lag p99 ${r.startLagP99Ms.toFixed(2)} ms)  EPP ${r.eppCpuMsPerReq?.toFixed(3) ?? '-'} ms CPU/req  (${r.errors} errors)`,
        );
      }
      open.push(or);
    }
    const closedLoop: ClosedRow[] = closed[0]!.map((first, idx) => {
      const all = closed.map((c) => c[idx]!);
      return {
        bodyBytes: first.bodyBytes,
        concurrency: first.concurrency,
        reqPerSec: all.map((r) => r.reqPerSec),
        p50Ms: all.map((r) => r.p50Ms),
        p99Ms: all.map((r) => r.p99Ms),
        eppCpuMsPerReq: all.map((r) => r.eppCpuMsPerReq),
        requestPathCpuMsPerReq: all.map((r) => r.requestPathCpuMsPerReq),
        errors: all.map((r) => r.errors),
      };
    });
    const openLoopRows: OpenRow[] = o.openLoopRates.map((rate, idx) => ({
      bodyBytes: 2_048,
      targetRate: rate,
      runs: open.map((r) => r[idx]!),
    }));
    return {
      profile: 'GIE default (queue 2, kv-cache-utilization 2, prefix-cache 3, max-score-picker)',
      endpoints: fakes.ports.length,
      chunkBytes: CHUNK_BYTES,
      requestBodyMode: 'FULL_DUPLEX_STREAMED',
      idleEppCpuMsPerSec: idle ?? null,
      closedLoop,
      openLoop: openLoopRows,
      noise: {
        closedReqPerSec: noiseSummary(closedLoop.map((r) => spread(r.reqPerSec))),
        closedP50: noiseSummary(closedLoop.map((r) => spread(r.p50Ms))),
        openP50: noiseSummary(openLoopRows.map((r) => spread(r.runs.map((x) => x.p50Ms)))),
        openP99: noiseSummary(openLoopRows.map((r) => spread(r.runs.map((x) => x.p99Ms)))),
      },
    };
  } finally {
    client?.close();
    await epp?.stop();
    fakes.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function extprocTables(s: ExtProcSection): string {
  const closed = formatTable({
    header: [
      'body',
      'conc',
      'req/s (runs)',
      'latency p50 ms',
      'latency p99 ms',
      'EPP CPU ms/req',
      'request path ms/req',
    ],
    rows: s.closedLoop.map((r) => [
      `${Math.round(r.bodyBytes / 1000)} KB`,
      r.concurrency,
      runs(r.reqPerSec, 0),
      runs(r.p50Ms, 2),
      runs(r.p99Ms, 2),
      runs(r.eppCpuMsPerReq, 3),
      runs(r.requestPathCpuMsPerReq, 3),
    ]),
  });
  const open = formatTable({
    header: [
      'body',
      'target req/s',
      'achieved req/s',
      'added p50 ms',
      'added p99 ms',
      'from send p50 / p99 ms',
      'generator lag p99 ms',
      'EPP CPU ms/req',
      'request path ms/req',
    ],
    rows: s.openLoop.map((r) => [
      `${Math.round(r.bodyBytes / 1000)} KB`,
      r.targetRate,
      runs(
        r.runs.map((x) => x.achievedRate),
        0,
      ),
      runs(
        r.runs.map((x) => x.p50Ms),
        2,
      ),
      runs(
        r.runs.map((x) => x.p99Ms),
        2,
      ),
      r.runs.map((x) => `${x.sentP50Ms.toFixed(2)} / ${x.sentP99Ms.toFixed(2)}`).join(', '),
      runs(
        r.runs.map((x) => x.startLagP99Ms),
        2,
      ),
      runs(
        r.runs.map((x) => x.eppCpuMsPerReq),
        3,
      ),
      runs(
        r.runs.map((x) => x.requestPathCpuMsPerReq),
        3,
      ),
    ]),
  });
  return `Closed loop (saturation; latency = queueing + service):\n\n${closed}\n\nOpen loop (fixed arrival rate; latency = scheduled arrival -> verdict):\n\n${open}`;
}
