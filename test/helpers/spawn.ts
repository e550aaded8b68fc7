// Spawns `node bin/hermes-router.js <function> ...` for tests that need a
// real process: waits until it is ready (an HTTP path answering 2xx, a TCP
// port accepting, or a line in its output), keeps its stdout+stderr, reads
// its resident memory, and stops it (SIGTERM, then SIGKILL after a grace
// period). stopAllSpawned() in afterAll stops whatever a file left running.
import { spawn, type ChildProcess } from 'node:child_process';
import { staleReason } from './fresh-build.js';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the first directory above this module with a package.json (works from test/ and dist/test/). */
export const REPO_ROOT = ((): string => {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6 && !existsSync(join(dir, 'package.json')); i++) dir = dirname(dir);
  return dir;
})();
export const CLI = join(REPO_ROOT, 'bin', 'hermes-router.js');

export type Readiness =
  | { http: string } // a full URL answering 2xx
  | { tcp: number } // a 127.0.0.1 port accepting connections
  | { output: string | RegExp }; // text printed on stdout/stderr

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  /** Name used in error messages (default: the function). */
  name?: string;
  ready?: Readiness;
  readyTimeoutMs?: number;
  /** Output kept in memory (the tail), default 4 MB. */
  maxOutput?: number;
  /** Default grace of stop() before SIGKILL, default 5 s. */
  stopGraceMs?: number;
}

export interface SpawnedFn {
  name: string;
  child: ChildProcess;
  pid: number;
  /** stdout + stderr so far (the tail, bounded). */
  output(): string;
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<string>;
  /** True while the process has not exited. */
  alive(): boolean;
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>;
  /** Resident set size in bytes (from /proc, or `ps` elsewhere). */
  rssBytes(): number;
  /** Sends `signal` (default SIGTERM), SIGKILL after `graceMs`; resolves on exit. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
}

const live = new Set<SpawnedFn>();

let checkedBuild = false;

/** The CLI runs dist/: refuse to run one older than the sources (vitest's global setup rebuilds it). */
function ensureBuilt(): void {
  if (checkedBuild) return;
  const stale = staleReason(REPO_ROOT);
  if (stale)
    throw new Error(`dist/ is stale (${stale}): run \`npm run build\` (vitest does it in its global setup)`);
  checkedBuild = true;
}

export function rssOfPid(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux, or the process is gone
  }
  return 0;
}

export async function spawnFn(fn: string, args: string[], opts: SpawnOptions = {}): Promise<SpawnedFn> {
  ensureBuilt();
  const name = opts.name ?? fn;
  const maxOutput = opts.maxOutput ?? 4_000_000;
  const child = spawn(process.execPath, [CLI, fn, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > maxOutput) out = out.slice(-Math.floor(maxOutput / 2));
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const isAlive = () => child.exitCode === null && child.signalCode === null;

  const proc: SpawnedFn = {
    name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    alive: isAlive,
    exited,
    rssBytes: () => rssOfPid(child.pid ?? -1),
    waitForOutput(text, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const end = Date.now() + timeoutMs;
        let timer: NodeJS.Timeout | undefined;
        const check = () => {
          if (timer) clearTimeout(timer);
          const m =
            typeof text === 'string' ? (out.includes(text) ? text : null) : (out.match(text)?.[0] ?? null);
          if (m !== null) return resolve(m);
          if (!isAlive())
            return reject(
              new Error(
                `${name} exited (${child.exitCode ?? child.signalCode}) before printing ${String(text)}:\n${out.slice(-3000)}`,
              ),
            );
          if (Date.now() > end)
            return reject(
              new Error(`${name}: no ${String(text)} within ${timeoutMs} ms:\n${out.slice(-3000)}`),
            );
          waiters.push(check);
          timer = setTimeout(check, 200);
        };
        check();
      });
    },
    async stop(signal = 'SIGTERM', graceMs = opts.stopGraceMs ?? 5_000) {
      live.delete(proc);
      if (!isAlive()) return child.exitCode;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
  live.add(proc);

  if (opts.ready) {
    try {
      await waitReady(proc, opts.ready, opts.readyTimeoutMs ?? 20_000);
    } catch (e) {
      await proc.stop('SIGKILL');
      throw e;
    }
  }
  return proc;
}

async function waitReady(proc: SpawnedFn, ready: Readiness, timeoutMs: number): Promise<void> {
  if ('output' in ready) {
    await proc.waitForOutput(ready.output, timeoutMs);
    return;
  }
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    if (!proc.alive())
      throw new Error(`${proc.name} exited before it was ready:\n${proc.output().slice(-3000)}`);
    if ('http' in ready) {
      try {
        const r = await fetch(ready.http, { signal: AbortSignal.timeout(1_000) });
        await r.arrayBuffer();
        if (r.ok) return;
        last = `HTTP ${r.status}`;
      } catch (e) {
        last = (e as Error).message;
      }
    } else {
      if (await tcpOpen(ready.tcp)) return;
      last = 'connection refused';
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${proc.name} not ready within ${timeoutMs} ms (${last}):\n${proc.output().slice(-3000)}`);
}

export function tcpOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1_000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** Whether a process id is still alive (for processes a spawned one started). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops every process spawned by this file that is still running. */
export async function stopAllSpawned(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

/**
 * Sum of the samples of metric `name` in Prometheus text whose label set
 * contains every `labels` substring (e.g. 'status="error"'); undefined when
 * no sample matches.
 */
export function metricSum(text: string, name: string, ...labels: string[]): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (!(line.startsWith(name + '{') || line.startsWith(name + ' '))) continue;
    if (!labels.every((l) => line.includes(l))) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) sum = (sum ?? 0) + v;
  }
  return sum;
}

/** Value of one series in Prometheus text (exact name and label string, e.g. `x{a="b"}`), or undefined. */
export function promValue(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(series + ' ')) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

export async function getText(url: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) });
  return r.text();
}
