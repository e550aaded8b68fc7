// `hermes-router state [endpoints|signals|loads|decisions]`: the shared
// scheduling state as readable tables (or --json), read straight from Redis
// or from a running EPP's admin API. Both sources give the same JSON: the
// Redis path serves it through the EPP's own admin routes, in process.
import type { BandStats } from '../flow/band-queue.js';
import { buildAdminApp } from './app.js';
import { STATE_VIEWS } from './state-options.js';
import { createRedisClient, RedisStateStore, redactUrl } from '../state/redis-store.js';

export const VIEWS = STATE_VIEWS;
export type View = (typeof VIEWS)[number];

export interface StateOptions {
  views: View[];
  redisUrl?: string;
  pool?: string;
  adminUrl?: string;
  adminToken?: string;
  json: boolean;
  limit: number;
  stalenessMs: number;
  timeoutMs: number;
}

interface EndpointRow {
  id: string;
  name: string;
  labels: Record<string, string>;
  inFlight: number;
  signals: {
    waitingQueueSize: number | null;
    runningRequests: number | null;
    kvCacheUsage: number | null;
    ageMs: number | null;
    stale: boolean;
  } | null;
}
interface LoadsBody {
  poolEvent: number;
  inFlight: Record<string, number>;
  bucketLoads: Record<string, { short: number; long: number; atEvent: number }>;
}
interface DecisionRow {
  requestId: string;
  atMs: number;
  model: string;
  profile: string;
  endpoint: string;
  prefill?: string;
  decode?: string;
  promptTokens: number;
  score: number;
}

type Fetcher = (path: string) => Promise<unknown>;

const ROUTE: Record<View, string> = {
  endpoints: '/state/endpoints',
  signals: '/state/endpoints',
  loads: '/state/loads',
  decisions: '/state/decisions',
  objectives: '/state/objectives',
  queues: '/state/queues',
};

/** Views only a running EPP has (its objectives, its own queue): not in Redis. */
const EPP_ONLY: readonly View[] = ['objectives', 'queues'];

interface QueuesBody {
  enabled: boolean;
  queued?: number;
  bytes?: number;
  requestTtlMs?: number;
  maxRequests?: number;
  maxBytes?: number;
  waitTargetMs?: number;
  closing?: boolean;
  bands?: BandStats[];
}

export async function runState(
  o: StateOptions,
  out: (s: string) => void = (s) => process.stdout.write(s),
): Promise<number> {
  const { fetcher, close } = await openSource(o);
  try {
    const bodies: Partial<Record<View, unknown>> = {};
    // From Redis, the EPP-only views are skipped among several (the default: all); one asked alone is an error.
    const views = o.adminUrl || o.views.length === 1 ? o.views : o.views.filter((v) => !EPP_ONLY.includes(v));
    for (const v of views) {
      if (!o.adminUrl && EPP_ONLY.includes(v)) {
        throw new Error(`${v} live in a running EPP: read them with --admin-url URL`);
      }
      const path = v === 'decisions' ? `${ROUTE[v]}?limit=${o.limit}` : ROUTE[v];
      bodies[v] = await fetcher(path);
    }
    if (o.json) {
      const one = views.length === 1 ? bodies[views[0]!] : bodies;
      out(JSON.stringify(one, null, 2) + '\n');
      return 0;
    }
    const parts: string[] = [];
    for (const v of views) parts.push(render(v, bodies[v]));
    out(parts.join('\n'));
    return 0;
  } finally {
    await close();
  }
}

async function openSource(o: StateOptions): Promise<{ fetcher: Fetcher; close(): Promise<void> }> {
  if (o.adminUrl) {
    const base = o.adminUrl.replace(/\/+$/, '');
    const headers: Record<string, string> = o.adminToken ? { authorization: `Bearer ${o.adminToken}` } : {};
    return {
      fetcher: async (path) => {
        const res = await fetch(base + path, { headers, signal: AbortSignal.timeout(o.timeoutMs) });
        if (!res.ok)
          throw new Error(`${base}${path}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
        return res.json();
      },
      close: async () => undefined,
    };
  }
  if (!o.redisUrl)
    throw new Error('say where the state is: --redis-url URL (with --pool) or --admin-url URL');
  if (!o.pool) throw new Error('--pool is required with --redis-url (the InferencePool name the EPPs use)');
  const client = createRedisClient(o.redisUrl, {
    commandTimeoutMs: o.timeoutMs,
    connectTimeoutMs: o.timeoutMs,
  });
  client.on('error', () => undefined);
  const store = new RedisStateStore(client, { pool: o.pool });
  try {
    await store.connect();
  } catch (e) {
    client.disconnect();
    throw new Error(`cannot reach Redis at ${redactUrl(o.redisUrl)}: ${(e as Error).message}`);
  }
  const app = buildAdminApp({ store, notReadyReasons: () => [], stalenessMs: o.stalenessMs });
  return {
    fetcher: async (path) => {
      const res = await app.request(path);
      const body = (await res.json()) as { error?: string };
      if (!res.ok) throw new Error(`${path}: ${body.error ?? res.status}`);
      return body;
    },
    close: () => store.close(),
  };
}

function render(v: View, body: unknown): string {
  switch (v) {
    case 'endpoints': {
      const eps = (body as { backend?: string; endpoints: EndpointRow[] }).endpoints;
      return section(
        `Endpoints (${eps.length})`,
        ['ID', 'NAME', 'ROLE', 'GROUP', 'IN-FLIGHT', 'LABELS'],
        eps.map((e) => [
          e.id,
          e.name,
          e.labels['openfuyao.com/pdRole'] ?? '-',
          e.labels['openfuyao.com/pdGroupID'] ?? '-',
          String(e.inFlight),
          Object.entries(e.labels)
            .filter(([k]) => !k.startsWith('openfuyao.com/pd'))
            .map(([k, val]) => `${k}=${val}`)
            .join(',') || '-',
        ]),
      );
    }
    case 'signals': {
      const eps = (body as { endpoints: EndpointRow[] }).endpoints;
      return section(
        'Signals',
        ['ID', 'WAITING', 'RUNNING', 'KV-CACHE', 'AGE', 'FRESH'],
        eps.map((e) => {
          const s = e.signals;
          if (!s) return [e.id, '-', '-', '-', 'never', 'no'];
          return [
            e.id,
            fmt(s.waitingQueueSize),
            fmt(s.runningRequests),
            s.kvCacheUsage === null ? '-' : `${(s.kvCacheUsage * 100).toFixed(1)}%`,
            s.ageMs === null ? '-' : age(s.ageMs),
            s.stale ? 'stale' : 'yes',
          ];
        }),
      );
    }
    case 'loads': {
      const l = body as LoadsBody;
      const ids = [...new Set([...Object.keys(l.inFlight), ...Object.keys(l.bucketLoads)])].sort();
      return section(
        `Loads (pool event ${l.poolEvent}; bucket loads as stored at AT-EVENT, decayed by readers)`,
        ['ID', 'IN-FLIGHT', 'SHORT', 'LONG', 'AT-EVENT'],
        ids.map((id) => {
          const b = l.bucketLoads[id];
          return [
            id,
            String(l.inFlight[id] ?? 0),
            b ? num(b.short) : '-',
            b ? num(b.long) : '-',
            b ? String(b.atEvent) : '-',
          ];
        }),
      );
    }
    case 'objectives': {
      const os = (body as { objectives: Array<{ name: string; priority: number }> }).objectives;
      return section(
        `InferenceObjectives (${os.length}; unknown or absent = priority 0, negative = sheddable)`,
        ['NAME', 'PRIORITY'],
        os.map((x) => [x.name, String(x.priority)]),
      );
    }
    case 'queues':
      return renderQueues(body as QueuesBody);
    case 'decisions': {
      const ds = (body as { decisions: DecisionRow[] }).decisions;
      return section(
        `Recent decisions (${ds.length}, newest first)`,
        ['TIME', 'REQUEST', 'MODEL', 'PROFILE', 'ENDPOINT', 'PREFILL', 'DECODE', 'TOKENS', 'SCORE'],
        ds.map((d) => [
          new Date(d.atMs).toISOString().slice(11, 23),
          d.requestId,
          d.model,
          d.profile,
          d.endpoint,
          d.prefill ?? '-',
          d.decode ?? '-',
          String(d.promptTokens),
          num(d.score),
        ]),
      );
    }
  }
}

function renderQueues(q: QueuesBody): string {
  if (!q.enabled)
    return 'Flow-control queue (this replica)\n  (no flowControl section: requests are never queued)\n';
  const bound = (n: number | undefined) => (n ? String(n) : 'unlimited');
  const title =
    `Flow-control queue (this replica): ${q.queued} queued, ${q.bytes} bytes; ` +
    `TTL ${q.requestTtlMs} ms; max ${bound(q.maxRequests)} requests, ${bound(q.maxBytes)} bytes; ` +
    `newcomers refused past ${q.waitTargetMs} ms of wait ahead${q.closing ? '; closing' : ''}`;
  return section(
    title,
    ['PRIORITY', 'QUEUED', 'BYTES', 'MAX-REQUESTS', 'MAX-BYTES', 'OLDEST-WAIT'],
    (q.bands ?? []).map((b) => [
      String(b.priority),
      String(b.length),
      String(b.bytes),
      String(b.maxRequests),
      String(b.maxBytes),
      b.length === 0 ? '-' : age(b.oldestWaitMs),
    ]),
  );
}

function fmt(n: number | null): string {
  return n === null ? '-' : String(n);
}

function num(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(Math.abs(n) >= 100 ? 1 : 3);
}

function age(ms: number): string {
  return ms < 1000
    ? `${Math.round(ms)}ms`
    : ms < 120_000
      ? `${(ms / 1000).toFixed(1)}s`
      : `${Math.round(ms / 60_000)}m`;
}

/** A titled, column-aligned table; "(none)" when empty. */
export function section(title: string, head: string[], rows: string[][]): string {
  if (rows.length === 0) return `${title}\n  (none)\n`;
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) =>
    '  ' +
    r
      .map((c, i) => (c ?? '').padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [title, line(head), ...rows.map(line), ''].join('\n');
}
