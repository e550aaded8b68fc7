// What the demo shows about traffic: the gateway's own count of requests
// per endpoint that answered, and the EPP's recent decisions (admin API
// /state/decisions) — for PD groups, which prefill and decode pods.
import type { GatewayStatsSnapshot } from '../gateway/stats.js';

export interface Decision {
  endpoint: string;
  prefill?: string;
  decode?: string;
  profile?: string;
}

export interface TrafficSnapshot {
  gateway?: GatewayStatsSnapshot;
  decisions?: Decision[];
}

async function getJson(url: string, timeoutMs: number): Promise<unknown> {
  // One retry: a pooled keep-alive socket the server has just closed fails the first try.
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
      return await r.json();
    } catch (e) {
      if (attempt >= 1) throw e;
    }
  }
}

/** Decisions from the admin API, which may wrap them in an object. */
export function decisionsOf(body: unknown): Decision[] {
  const list = Array.isArray(body) ? body : (body as { decisions?: unknown })?.decisions;
  if (!Array.isArray(list)) return [];
  return list.filter(
    (d): d is Decision => typeof d === 'object' && d !== null && typeof (d as Decision).endpoint === 'string',
  );
}

export async function takeSnapshot(
  gatewayUrl: string,
  eppAdminUrl: string,
  timeoutMs = 800,
): Promise<TrafficSnapshot> {
  const [g, d] = await Promise.allSettled([
    getJson(`${gatewayUrl}/_gateway/stats`, timeoutMs),
    getJson(`${eppAdminUrl}/state/decisions?limit=1000`, timeoutMs),
  ]);
  const out: TrafficSnapshot = {};
  if (g.status === 'fulfilled') out.gateway = g.value as GatewayStatsSnapshot;
  if (d.status === 'fulfilled') out.decisions = decisionsOf(d.value);
  return out;
}

function count<T>(items: T[], key: (t: T) => string | undefined): Map<string, number> {
  const m = new Map<string, number>();
  for (const i of items) {
    const k = key(i);
    if (k) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}

/** One line for progress output; empty when nothing has happened yet. */
export function progressLine(s: TrafficSnapshot, names: Map<string, string>): string {
  const g = s.gateway;
  if (!g || g.requests === 0) return '';
  const per = Object.entries(g.routed)
    .sort((a, b) => b[1] - a[1])
    .map(([ep, n]) => `${names.get(ep) ?? ep}=${n}`)
    .join(' ');
  const rejected = Object.values(g.immediate).reduce((a, b) => a + b, 0);
  if (!per && !rejected) return '';
  return `requests ${g.requests}: ${per || '-'}${rejected ? ` | answered by the EPP: ${rejected}` : ''}${g.fallbacks ? ` | fallbacks ${g.fallbacks}` : ''}`;
}

export function summaryText(s: TrafficSnapshot, names: Map<string, string>): string {
  const lines: string[] = ['', 'Summary'];
  const g = s.gateway;
  if (!g) lines.push('  (the gateway did not answer; no counts)');
  else {
    lines.push(`  requests through the gateway: ${g.requests}`);
    const routed = Object.entries(g.routed).sort((a, b) => b[1] - a[1]);
    if (routed.length) lines.push('  served by endpoint:');
    for (const [ep, n] of routed) lines.push(`    ${(names.get(ep) ?? ep).padEnd(16)} ${ep.padEnd(22)} ${n}`);
    for (const [status, n] of Object.entries(g.immediate))
      lines.push(`  answered by the EPP with HTTP ${status}: ${n}`);
    if (g.fallbacks) lines.push(`  served by a fallback endpoint: ${g.fallbacks}`);
    if (g.eppFailures) lines.push(`  EPP failures: ${g.eppFailures}`);
  }
  const d = s.decisions;
  if (d && d.length) {
    lines.push(`  EPP decisions (last ${d.length}):`);
    const pd = d.some((x) => x.prefill || x.decode);
    for (const [ep, n] of [...count(d, (x) => x.endpoint)].sort((a, b) => b[1] - a[1])) {
      lines.push(`    ${pd ? 'leader  ' : ''}${(names.get(ep) ?? ep).padEnd(16)} ${n}`);
    }
    if (pd) {
      for (const [ep, n] of count(d, (x) => x.prefill))
        lines.push(`    prefill ${(names.get(ep) ?? ep).padEnd(16)} ${n}`);
      for (const [ep, n] of count(d, (x) => x.decode))
        lines.push(`    decode  ${(names.get(ep) ?? ep).padEnd(16)} ${n}`);
    }
  }
  return lines.join('\n') + '\n';
}
