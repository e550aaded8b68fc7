// Test fixtures for the EPP integration tests: fake vLLM model servers that
// only serve /metrics (with queue depths the test can change), an EPP
// process started through the real CLI, and small readers of its admin API.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../../helpers/ports.js';

export const ROOT = resolve(import.meta.dirname, '../../..');

export interface FakeModelServer {
  port: number;
  id: string;
  waiting: number;
  running: number;
  kv: number;
  /** Emit only the pre-rename KV gauge (vllm:gpu_cache_usage_perc). */
  legacyKv: boolean;
  /** /metrics requests served so far (settable, e.g. reset to 0). */
  hits: number;
  close(): Promise<void>;
}

export async function fakeModelServer(waiting = 0, kv = 0.1): Promise<FakeModelServer> {
  const port = await freePort();
  const state = { waiting, running: 1, kv, legacyKv: false, hits: 0 };
  const server: Server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end();
      return;
    }
    state.hits++;
    const kvName = state.legacyKv ? 'vllm:gpu_cache_usage_perc' : 'vllm:kv_cache_usage_perc';
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    res.end(
      [
        '# HELP vllm:num_requests_waiting Number of requests waiting to be processed.',
        '# TYPE vllm:num_requests_waiting gauge',
        `vllm:num_requests_waiting{engine="0",model_name="m"} ${state.waiting}`,
        `vllm:num_requests_running{engine="0",model_name="m"} ${state.running}`,
        `${kvName}{engine="0",model_name="m"} ${state.kv}`,
        '',
      ].join('\n'),
    );
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  const fake = {
    port,
    id: `127.0.0.1:${port}`,
    get waiting() {
      return state.waiting;
    },
    set waiting(v: number) {
      state.waiting = v;
    },
    get running() {
      return state.running;
    },
    set running(v: number) {
      state.running = v;
    },
    get kv() {
      return state.kv;
    },
    set kv(v: number) {
      state.kv = v;
    },
    get hits() {
      return state.hits;
    },
    set hits(v: number) {
      state.hits = v;
    },
    get legacyKv() {
      return state.legacyKv;
    },
    set legacyKv(v: boolean) {
      state.legacyKv = v;
    },
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  return fake;
}

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'hermes-epp-'));
}

export function endpointsYaml(
  eps: Array<{ name: string; port: number; labels?: Record<string, string> }>,
): string {
  if (eps.length === 0) return 'endpoints: []\n';
  return (
    'endpoints:\n' +
    eps
      .map((e) => {
        let s = `- name: ${e.name}\n  address: 127.0.0.1\n  port: ${e.port}\n`;
        if (e.labels) s += `  labels: ${JSON.stringify(e.labels)}\n`;
        return s;
      })
      .join('')
  );
}

export interface EppProcess {
  grpc: number;
  admin: number;
  metrics: number;
  health: number;
  /** Bearer token of the admin API, when the EPP was given one. */
  token?: string;
  proc: ChildProcess;
  logs: () => string;
  stop(): Promise<number | null>;
}

export async function startEpp(args: string[], env: NodeJS.ProcessEnv = {}): Promise<EppProcess> {
  const cli = join(ROOT, 'dist/functions/cli/main.js');
  if (!existsSync(cli)) throw new Error('dist/ is missing: run `npm run build` first (npm test does)');
  const [grpc, admin, metrics, health] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const proc = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/hermes-router.js'),
      'epp',
      '--grpc-bind',
      '127.0.0.1',
      '--metrics-bind',
      '127.0.0.1',
      '--grpc-port',
      String(grpc),
      '--admin-port',
      String(admin),
      '--metrics-port',
      String(metrics),
      '--grpc-health-port',
      String(health),
      ...args,
    ],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  const epp: EppProcess = {
    grpc,
    admin,
    metrics,
    health,
    token: env.ADMIN_TOKEN,
    proc,
    logs: () => out,
    async stop() {
      if (proc.exitCode !== null) return proc.exitCode;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 8_000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`epp exited with ${proc.exitCode}:\n${out}`);
    try {
      const r = await fetch(`http://127.0.0.1:${admin}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await epp.stop();
      throw new Error(`epp not ready within 15 s:\n${out}`);
    }
    await sleep(50);
  }
  return epp;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export interface EndpointState {
  id: string;
  inFlight: number;
  signals: { waitingQueueSize: number | null; kvCacheUsage: number | null; stale: boolean } | null;
}

export async function endpointStates(epp: EppProcess): Promise<EndpointState[]> {
  const r = await fetch(`http://127.0.0.1:${epp.admin}/state/endpoints`, {
    headers: epp.token ? { authorization: `Bearer ${epp.token}` } : {},
  });
  if (r.status !== 200) throw new Error(`/state/endpoints answered ${r.status}`);
  return ((await r.json()) as { endpoints: EndpointState[] }).endpoints;
}

export async function totalInFlight(epp: EppProcess): Promise<number> {
  return (await endpointStates(epp)).reduce((s, e) => s + e.inFlight, 0);
}

/** Polls until `check` returns true (or fails after timeoutMs). */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export async function promMetrics(epp: EppProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${epp.metrics}/metrics`)).text();
}

/** Value of one series in Prometheus text (exact name + label string), or undefined. */
export function promValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

export function writeFile(path: string, text: string): void {
  writeFileSync(path, text);
}
