// Spawns `node bin/hermes-router.js <function> ...` (after `npm run build`)
// and waits until its HTTP port answers. Shared by the mock-vllm and
// cache-indexer integration tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const BIN = join(ROOT, 'bin', 'hermes-router.js');

export interface Spawned {
  child: ChildProcess;
  url: string;
  output(): string;
  stop(): Promise<void>;
}

export async function spawnFunction(
  args: string[],
  port: number,
  readyPath: string,
  timeoutMs = 15_000,
): Promise<Spawned> {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LOG_LEVEL: 'warn' },
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const s: Spawned = {
    child,
    url,
    output: () => out,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => child.kill('SIGKILL'), 3_000);
        child.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        child.kill('SIGTERM');
      });
    },
  };
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (child.exitCode !== null) throw new Error(`${args[0]} exited with ${child.exitCode}: ${out}`);
    try {
      const r = await fetch(url + readyPath);
      if (r.ok) return s;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await s.stop();
  throw new Error(`${args[0]} did not answer ${readyPath} within ${timeoutMs} ms: ${out}`);
}

export async function postJson(
  url: string,
  body: unknown,
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, json: JSON.parse(text) as Record<string, unknown>, headers: r.headers };
}

/** Reads an SSE body into its `data:` payloads. */
export async function sseEvents(
  url: string,
  body: unknown,
): Promise<{ status: number; events: string[]; headers: Headers }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  const events = text
    .split('\n\n')
    .map((b) => b.trim())
    .filter((b) => b.startsWith('data: '))
    .map((b) => b.slice(6));
  return { status: r.status, events, headers: r.headers };
}

/** One metric sample's value from Prometheus text, matching name and optional label substring. */
export function metricValue(text: string, name: string, labelPart = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    if (!(line.startsWith(name + '{') || line.startsWith(name + ' '))) continue;
    if (labelPart && !line.includes(labelPart)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
