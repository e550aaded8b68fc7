// Scrapes every endpoint's vLLM /metrics each --refresh-metrics-interval and
// writes the signals to the StateStore. Each endpoint has its own loop (a
// slow pod delays nobody else) with a per-poll timeout; connections are
// kept alive. A failed scrape writes nothing, so the last signals age past
// --metrics-staleness-threshold and the Director treats them as unknown.
// Failures are counted every time and logged once per failing spell.
//
// With shared state (Redis) N replicas would scrape every endpoint N times
// per interval. Instead each endpoint has a short lease `scrape:<id>` in the
// store: a replica scrapes only the endpoints whose lease it holds, renews
// them about once a second (not once per scrape), and picks up the others'
// endpoints when their leases expire (holder dead or cut off). The signals
// it writes are what every replica reads. Without leases (memory store) it
// scrapes everything.
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import type { Endpoint, EndpointSignals } from '../scheduling/types.js';
import type { StateStore } from '../state/store.js';
import { parsePromText, type Families } from './prom-text.js';

export const VLLM_WAITING = 'vllm:num_requests_waiting';
export const VLLM_RUNNING = 'vllm:num_requests_running';
/** vLLM's current KV gauge name, and the one it replaced (GIE ≤1.2 default). */
export const VLLM_KV_USAGE = 'vllm:kv_cache_usage_perc';
export const VLLM_KV_USAGE_OLD = 'vllm:gpu_cache_usage_perc';

const WANTED = new Set([VLLM_WAITING, VLLM_RUNNING, VLLM_KV_USAGE, VLLM_KV_USAGE_OLD]);

/** A family's value for one endpoint: counts add up across engines, usage takes the fullest one. */
function aggregate(f: Families, name: string, how: 'sum' | 'max'): number | undefined {
  const samples = f.get(name);
  if (!samples || samples.length === 0) return undefined;
  let v = how === 'sum' ? 0 : -Infinity;
  for (const s of samples) {
    if (!Number.isFinite(s.value)) continue;
    v = how === 'sum' ? v + s.value : Math.max(v, s.value);
  }
  return Number.isFinite(v) ? v : undefined;
}

/** Signals from a /metrics page; throws when it holds none of the vLLM gauges. */
export function signalsFromMetrics(text: string, nowMs: number): EndpointSignals {
  const { families } = parsePromText(text, WANTED);
  const s: EndpointSignals = { updatedAtMs: nowMs };
  const waiting = aggregate(families, VLLM_WAITING, 'sum');
  const running = aggregate(families, VLLM_RUNNING, 'sum');
  const kv = aggregate(families, VLLM_KV_USAGE, 'max') ?? aggregate(families, VLLM_KV_USAGE_OLD, 'max');
  if (waiting === undefined && running === undefined && kv === undefined) {
    throw new Error(`no ${VLLM_WAITING}, ${VLLM_RUNNING} or ${VLLM_KV_USAGE} in the metrics page`);
  }
  if (waiting !== undefined) s.waitingQueueSize = waiting;
  if (running !== undefined) s.runningRequests = running;
  if (kv !== undefined) s.kvCacheUsage = Math.min(1, Math.max(0, kv));
  return s;
}

export interface ScraperHooks {
  onScrape?(endpointId: string, seconds: number): void;
  onScrapeError?(endpointId: string, err: Error): void;
  /** Writing signals to the state store failed. */
  onStateError?(op: string, err: Error): void;
  /** Number of endpoints this replica scrapes changed (a lease was acquired or lost). */
  onLeases?(held: number, change: 'acquired' | 'lost'): void;
}

export interface ScrapeLeaseOptions {
  store: Pick<StateStore, 'tryAcquireLease'>;
  /** This replica's identity in the lease. */
  holder: string;
  /** Lease time to live; another replica takes an endpoint over at most this long after its holder stops renewing. */
  ttlMs: number;
  /** Renewal period (default min(1 s, ttl/2)). */
  renewEveryMs?: number;
}

export interface MetricsScraperOptions {
  store: StateStore;
  logger: Logger;
  intervalMs: number;
  /** Per-poll timeout; default min(1 s, max(interval, 250 ms)) as GIE uses 1 s. */
  timeoutMs?: number;
  scheme?: 'http' | 'https';
  hooks?: ScraperHooks;
  now?: () => number;
  /** Shared scraping: scrape only the endpoints whose lease this replica holds. */
  leases?: ScrapeLeaseOptions;
}

interface Target {
  endpoint: Endpoint;
  url: string;
  timer: NodeJS.Timeout | undefined;
  failing: boolean;
  stopped: boolean;
  /** Lease mode: this replica holds the endpoint's scrape lease. */
  held: boolean;
  /** Bumped whenever the loop is (re)started or halted: an older loop's tick then exits. */
  gen: number;
}

export const scrapeLeaseName = (endpointId: string): string => `scrape:${endpointId}`;

export function metricsUrl(e: Endpoint, scheme = 'http'): string {
  const host = e.address.includes(':') ? `[${e.address}]` : e.address;
  return `${scheme}://${host}:${e.metricsPort ?? e.port}${e.metricsPath ?? '/metrics'}`;
}

export class MetricsScraper {
  private readonly targets = new Map<string, Target>();
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private running = false;
  private scrapes = 0;
  private errors = 0;
  private leaseTimer: NodeJS.Timeout | undefined;
  private leaseRound: Promise<void> | undefined;
  private heldCount = 0;

  constructor(private readonly opts: MetricsScraperOptions) {
    this.timeoutMs = opts.timeoutMs ?? Math.min(1_000, Math.max(opts.intervalMs, 250));
    this.agent = new Agent({ keepAliveTimeout: 10_000, connections: 2, connectTimeout: this.timeoutMs });
  }

  /** Scrapes attempted and failed so far. */
  get stats(): { scrapes: number; errors: number } {
    return { scrapes: this.scrapes, errors: this.errors };
  }

  /** Endpoints this replica scrapes now (all of them without leases). */
  get scraping(): number {
    return this.opts.leases ? this.heldCount : this.targets.size;
  }

  /** Follows discovery: starts loops for new endpoints, stops removed ones. */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    const next = new Map(endpoints.map((e) => [e.id, e]));
    for (const [id, t] of this.targets) {
      const e = next.get(id);
      if (!e || metricsUrl(e, this.opts.scheme) !== t.url) {
        t.stopped = true;
        if (t.timer) clearTimeout(t.timer);
        this.targets.delete(id);
        if (t.held) this.heldCount--;
      } else t.endpoint = e;
    }
    let added = false;
    for (const e of endpoints) {
      if (this.targets.has(e.id)) continue;
      const t: Target = {
        endpoint: e,
        url: metricsUrl(e, this.opts.scheme),
        timer: undefined,
        failing: false,
        stopped: false,
        held: false,
        gen: 0,
      };
      this.targets.set(e.id, t);
      added = true;
      if (this.running && !this.opts.leases) this.loop(t);
    }
    // New endpoints are contended for now, not at the next renewal.
    if (added && this.running && this.opts.leases) void this.renewLeases();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const leases = this.opts.leases;
    if (!leases) {
      for (const t of this.targets.values()) this.loop(t);
      return;
    }
    void this.renewLeases();
    const every = leases.renewEveryMs ?? Math.min(1_000, Math.max(10, Math.floor(leases.ttlMs / 2)));
    this.leaseTimer = setInterval(() => void this.renewLeases(), every);
    this.leaseTimer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    await this.leaseRound;
    const held: Target[] = [];
    for (const t of this.targets.values()) {
      t.stopped = true;
      if (t.timer) clearTimeout(t.timer);
      if (t.held) held.push(t);
    }
    const leases = this.opts.leases;
    if (leases && held.length > 0) {
      // Hand the endpoints over now: a 1 ms renewal lets the lease lapse at once,
      // so the others take over at their next renewal rather than after a full TTL.
      await Promise.all(
        held.map((t) =>
          leases.store.tryAcquireLease(scrapeLeaseName(t.endpoint.id), leases.holder, 1).catch(() => false),
        ),
      );
    }
    await this.agent.close().catch(() => undefined);
  }

  /** One lease round over every endpoint; rounds never overlap. */
  renewLeases(): Promise<void> {
    if (this.leaseRound) return this.leaseRound;
    this.leaseRound = this.leaseRoundNow().finally(() => (this.leaseRound = undefined));
    return this.leaseRound;
  }

  private async leaseRoundNow(): Promise<void> {
    const leases = this.opts.leases;
    if (!leases || !this.running) return;
    await Promise.all(
      [...this.targets.values()].map(async (t) => {
        let holds: boolean;
        try {
          holds = await leases.store.tryAcquireLease(
            scrapeLeaseName(t.endpoint.id),
            leases.holder,
            leases.ttlMs,
          );
        } catch (e) {
          // Cannot coordinate: scraping twice beats letting the signals go stale.
          this.opts.hooks?.onStateError?.('tryAcquireLease', e as Error);
          holds = true;
        }
        if (t.stopped || !this.running || holds === t.held) return;
        t.held = holds;
        this.heldCount += holds ? 1 : -1;
        if (holds) this.loop(t);
        else this.halt(t);
        this.opts.logger.debug(
          { endpoint: t.endpoint.id, held: holds },
          holds ? 'scrape lease acquired' : 'scrape lease lost',
        );
        this.opts.hooks?.onLeases?.(this.heldCount, holds ? 'acquired' : 'lost');
      }),
    );
  }

  private halt(t: Target): void {
    t.gen++;
    if (t.timer) clearTimeout(t.timer);
    t.timer = undefined;
  }

  /** Scrapes every endpoint once now (startup, tests). */
  async scrapeAll(): Promise<void> {
    await Promise.all([...this.targets.values()].map((t) => this.scrape(t)));
  }

  private loop(t: Target): void {
    this.halt(t);
    const gen = t.gen;
    const tick = async () => {
      if (t.stopped || !this.running || t.gen !== gen) return;
      const started = Date.now();
      await this.scrape(t);
      if (t.stopped || !this.running || t.gen !== gen) return;
      // Fixed rate, but never two polls of one endpoint at once.
      const wait = Math.max(0, this.opts.intervalMs - (Date.now() - started));
      t.timer = setTimeout(tick, wait);
      t.timer.unref();
    };
    t.timer = setTimeout(tick, 0);
    t.timer.unref();
  }

  private async scrape(t: Target): Promise<void> {
    const id = t.endpoint.id;
    const t0 = performance.now();
    this.scrapes++;
    let signals: EndpointSignals;
    try {
      // undici's own timeouts, not AbortSignal.timeout(): a signal and timer per
      // poll cost three times the CPU of the whole request at 50 ms x N endpoints.
      const res = await request(t.url, {
        dispatcher: this.agent,
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        headers: { accept: 'text/plain' },
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode} from ${t.url}`);
      signals = signalsFromMetrics(text, (this.opts.now ?? Date.now)());
    } catch (e) {
      this.errors++;
      const err = e as Error;
      this.opts.hooks?.onScrapeError?.(id, err);
      if (!t.failing) {
        t.failing = true;
        this.opts.logger.warn(
          { endpoint: id, url: t.url, err: err.message },
          'metrics scrape failing; signals will go stale',
        );
      }
      return;
    }
    if (t.failing) {
      t.failing = false;
      this.opts.logger.info({ endpoint: id }, 'metrics scrape recovered');
    }
    this.opts.hooks?.onScrape?.(id, (performance.now() - t0) / 1000);
    if (t.stopped) return;
    try {
      await this.opts.store.writeSignals(id, signals);
    } catch (e) {
      this.opts.hooks?.onStateError?.('writeSignals', e as Error);
    }
  }
}
