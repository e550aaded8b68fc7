// Starts `hermes-router <function> ...` (after `npm run build`) through
// test/helpers/spawn.ts and waits until its HTTP port answers; plus small
// HTTP readers. Shared by the mock-vllm and cache-indexer integration tests.
import { spawnFn, type SpawnedFn } from '../../helpers/spawn.js';

export interface Spawned extends SpawnedFn {
  url: string;
}

/** `args` starts with the function name; the process is ready once GET `readyPath` on `port` answers 2xx. */
export async function spawnFunction(
  args: string[],
  port: number,
  readyPath: string,
  timeoutMs = 15_000,
): Promise<Spawned> {
  const [fn, ...rest] = args;
  if (!fn) throw new Error('spawnFunction: no function named');
  const url = `http://127.0.0.1:${port}`;
  const proc = await spawnFn(fn, rest, {
    env: { LOG_LEVEL: 'warn' },
    ready: { http: url + readyPath },
    readyTimeoutMs: timeoutMs,
    stopGraceMs: 3_000,
  });
  return Object.assign(proc, { url });
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
