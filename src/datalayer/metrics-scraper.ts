// Scrapes every endpoint's vLLM /metrics each --refresh-metrics-interval and
// writes the signals to the StateStore. Each endpoint is polled on its own
// (a slow pod delays nobody else) with a per-poll timeout; connections are
// kept alive. A failed scrape writes nothing, so the last signals age past
// --metrics-staleness-threshold and the Director treats them as unknown.
// Failures are counted every time and logged once per failing spell.
//
// Cost (docs/benchmarks.md, "Scraping cost"): at 50 ms x N endpoints the
// per-poll overhead is what matters, so one shared timer starts the polls of
// all idle endpoints together (the event loop wakes once per interval, not
// once per endpoint), a poll is a bare undici dispatch whose body chunks are
// kept as bytes, and prom-scan.ts picks the four gauges out of those bytes
// without decoding or parsing the rest of the page.
//
// With shared state (Redis) N replicas would scrape every endpoint N times
// per interval. Instead each endpoint has a short lease `scrape:<id>` in the
// store: a replica scrapes only the endpoints whose lease it holds, renews
// them about once a second (not once per scrape), and picks up the others'
// endpoints when their leases expire (holder dead or cut off). The signals
// it writes are what every replica reads. Without leases (memory store) it
// scrapes everything.
import type { Logger } from 'pino';
import { Agent, type Dispatcher } from 'undici';
import type { Endpoint, EndpointSignals } from '../scheduling/types.js';
import type { StateStore } from '../state/store.js';
import { familyNeedle, scanFamily, type FamilyFold } from './prom-scan.js';
import { loraFromMetrics } from './lora-info.js';

export const VLLM_WAITING = 'vllm:num_requests_waiting';
export const VLLM_RUNNING = 'vllm:num_requests_running';
/** vLLM's current KV gauge name, and the one it replaced (GIE ≤1.2 default). */
export const VLLM_KV_USAGE = 'vllm:kv_cache_usage_perc';
export const VLLM_KV_USAGE_OLD = 'vllm:gpu_cache_usage_perc';

const WAITING = familyNeedle(VLLM_WAITING);
const RUNNING = familyNeedle(VLLM_RUNNING);
const KV_USAGE = familyNeedle(VLLM_KV_USAGE);
const KV_USAGE_OLD = familyNeedle(VLLM_KV_USAGE_OLD);

/** A page larger than this is refused (vLLM's is ~10-150 KB); it would only cost memory and CPU. */
export const MAX_METRICS_PAGE_BYTES = 16 * 1024 * 1024;

/** Counts add up across engines (undefined if the total is not finite). */
const sumOf = (f: FamilyFold | undefined): number | undefined =>
  f && Number.isFinite(f.sum) ? f.sum : undefined;
/** Usage takes the fullest engine (undefined when no engine reported a finite value). */
const maxOf = (f: FamilyFold | undefined): number | undefined =>
  f && Number.isFinite(f.max) ? f.max : undefined;

/** Signals from a /metrics page (bytes as received, or text); throws when it holds none of the vLLM gauges. */
export function signalsFromMetrics(page: Buffer | string, nowMs: number): EndpointSignals {
  const buf = typeof page === 'string' ? Buffer.from(page, 'utf8') : page;
  const s: EndpointSignals = { updatedAtMs: nowMs };
  const waiting = sumOf(scanFamily(buf, WAITING));
  const running = sumOf(scanFamily(buf, RUNNING));
  // The deprecated name is only looked for when the current one is absent.
  const kv = maxOf(scanFamily(buf, KV_USAGE)) ?? maxOf(scanFamily(buf, KV_USAGE_OLD));
  if (waiting === undefined && running === undefined && kv === undefined) {
    throw new Error(`no ${VLLM_WAITING}, ${VLLM_RUNNING} or ${VLLM_KV_USAGE} in the metrics page`);
  }
  if (waiting !== undefined) s.waitingQueueSize = waiting;
  if (running !== undefined) s.runningRequests = running;
  if (kv !== undefined) s.kvCacheUsage = Math.min(1, Math.max(0, kv));
  const lora = loraFromMetrics(buf);
  if (lora) s.lora = lora;
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
  /** The GET of url as undici's dispatch takes it: made once, every poll sends the same. */
  request: Dispatcher.DispatchOptions;
  failing: boolean;
  stopped: boolean;
  /** Lease mode: this replica holds the endpoint's scrape lease. */
  held: boolean;
  /** The shared timer polls this endpoint (started and not halted). */
  active: boolean;
  /** A timer-driven poll is in flight: never two at once. */
  busy: boolean;
  /** performance.now() when the last timer-driven poll started. */
  lastStartMs: number;
}

export const scrapeLeaseName = (endpointId: string): string => `scrape:${endpointId}`;

export function metricsUrl(e: Endpoint, scheme = 'http'): string {
  const host = e.address.includes(':') ? `[${e.address}]` : e.address;
  return `${scheme}://${host}:${e.metricsPort ?? e.port}${e.metricsPath ?? '/metrics'}`;
}

const REQUEST_HEADERS = { accept: 'text/plain' };

function splitUrl(url: string): { origin: string; path: string } {
  try {
    const u = new URL(url);
    return { origin: u.origin, path: `${u.pathname}${u.search}` };
  } catch {
    // An address that makes no URL: every poll fails (counted, logged) like an unreachable pod.
    return { origin: url, path: '/' };
  }
}

/**
 * One GET of a /metrics page as a bare undici dispatch handler: no response
 * stream, promise or string per poll; the body stays a list of chunks.
 */
class PageRequest implements Dispatcher.DispatchHandler {
  private status = 0;
  private chunks: Buffer[] = [];
  private bytes = 0;
  private done = false;

  constructor(
    private readonly url: string,
    private readonly finish: (err: Error | undefined, page: Buffer | undefined) => void,
  ) {}

  // Its presence tells undici this handler speaks the current (controller) API.
  onRequestStart(): void {}

  onResponseStart(_c: Dispatcher.DispatchController, statusCode: number): void {
    if (statusCode >= 200) this.status = statusCode; // 1xx are interim
  }

  onResponseData(c: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.status !== 200) return; // drained so the connection is reused, not kept
    this.bytes += chunk.length;
    if (this.bytes > MAX_METRICS_PAGE_BYTES) {
      this.chunks = [];
      c.abort(new Error(`metrics page from ${this.url} is over ${MAX_METRICS_PAGE_BYTES} bytes`));
      return;
    }
    this.chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.done) return;
    this.done = true;
    if (this.status !== 200) this.finish(new Error(`HTTP ${this.status} from ${this.url}`), undefined);
    else
      this.finish(
        undefined,
        this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.bytes),
      );
  }

  onResponseError(_c: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.done) return;
    this.done = true;
    this.finish(err, undefined);
  }
}

export class MetricsScraper {
  private readonly targets = new Map<string, Target>();
  private readonly agent: Agent;
  private readonly timeoutMs: number;
  private running = false;
  private scrapes = 0;
  private errors = 0;
  private ticker: NodeJS.Timeout | undefined;
  private leaseTimer: NodeJS.Timeout | undefined;
  private leaseRound: Promise<void> | undefined;
  private heldCount = 0;

  constructor(private readonly opts: MetricsScraperOptions) {
    this.timeoutMs = opts.timeoutMs ?? Math.min(1_000, Math.max(opts.intervalMs, 250));
    // One connection per endpoint: polls of one endpoint never overlap, and with
    // two allowed undici opened a second one when a back-to-back poll was
    // dispatched before it had marked the first connection free again.
    this.agent = new Agent({ keepAliveTimeout: 10_000, connections: 1, connectTimeout: this.timeoutMs });
  }

  /** Scrapes attempted and failed so far. */
  get stats(): { scrapes: number; errors: number } {
    return { scrapes: this.scrapes, errors: this.errors };
  }

  /** Endpoints this replica scrapes now (all of them without leases). */
  get scraping(): number {
    return this.opts.leases ? this.heldCount : this.targets.size;
  }

  /** Follows discovery: starts polling new endpoints, stops removed ones. */
  setEndpoints(endpoints: readonly Endpoint[]): void {
    const next = new Map(endpoints.map((e) => [e.id, e]));
    for (const [id, t] of this.targets) {
      const e = next.get(id);
      if (!e || metricsUrl(e, this.opts.scheme) !== t.url) {
        t.stopped = true;
        t.active = false;
        this.targets.delete(id);
        if (t.held) this.heldCount--;
      } else t.endpoint = e;
    }
    let added = false;
    for (const e of endpoints) {
      if (this.targets.has(e.id)) continue;
      const url = metricsUrl(e, this.opts.scheme);
      const t: Target = {
        endpoint: e,
        url,
        request: {
          ...splitUrl(url),
          method: 'GET',
          headers: REQUEST_HEADERS,
          headersTimeout: this.timeoutMs,
          bodyTimeout: this.timeoutMs,
        },
        failing: false,
        stopped: false,
        held: false,
        active: false,
        busy: false,
        lastStartMs: -Infinity,
      };
      this.targets.set(e.id, t);
      added = true;
      if (this.running && !this.opts.leases) this.activate(t);
    }
    // New endpoints are contended for now, not at the next renewal.
    if (added && this.running && this.opts.leases) void this.renewLeases();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    // One timer for every endpoint: the polls that are due start together.
    this.ticker = setInterval(() => this.tick(), this.opts.intervalMs);
    this.ticker.unref();
    const leases = this.opts.leases;
    if (!leases) {
      for (const t of this.targets.values()) this.activate(t);
      return;
    }
    void this.renewLeases();
    const every = leases.renewEveryMs ?? Math.min(1_000, Math.max(10, Math.floor(leases.ttlMs / 2)));
    this.leaseTimer = setInterval(() => void this.renewLeases(), every);
    this.leaseTimer.unref();
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.ticker) clearInterval(this.ticker);
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    await this.leaseRound;
    const held: Target[] = [];
    for (const t of this.targets.values()) {
      t.stopped = true;
      t.active = false;
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
        if (holds) this.activate(t);
        else t.active = false;
        this.opts.logger.debug(
          { endpoint: t.endpoint.id, held: holds },
          holds ? 'scrape lease acquired' : 'scrape lease lost',
        );
        this.opts.hooks?.onLeases?.(this.heldCount, holds ? 'acquired' : 'lost');
      }),
    );
  }

  /** Scrapes every endpoint once now (startup, tests). */
  async scrapeAll(): Promise<void> {
    await Promise.all([...this.targets.values()].map((t) => new Promise<void>((r) => this.scrape(t, r))));
  }

  /** Puts an endpoint on the shared timer and polls it at once (unless a poll is in flight). */
  private activate(t: Target): void {
    t.active = true;
    if (!t.busy) this.poll(t);
  }

  /**
   * Starts the polls that are due. An endpoint whose last poll started less
   * than half an interval ago (it joined between two ticks) waits one tick,
   * after which it is in step with the others.
   */
  private tick(): void {
    const now = performance.now();
    const due = now - this.opts.intervalMs / 2;
    for (const t of this.targets.values()) {
      if (t.active && !t.busy && t.lastStartMs <= due) this.poll(t);
    }
  }

  private poll(t: Target): void {
    t.busy = true;
    t.lastStartMs = performance.now();
    this.scrape(t, () => {
      t.busy = false;
      if (!t.active || t.stopped || !this.running) return;
      // A poll that took a whole interval or more is followed by the next one at
      // once, as a fixed-rate loop would; the shared tick would add up to an interval.
      if (performance.now() - t.lastStartMs >= this.opts.intervalMs) {
        setImmediate(() => {
          if (t.active && !t.busy && !t.stopped && this.running) this.poll(t);
        });
      }
    });
  }

  /** One scrape of `t`; `done` runs once the signals are written (or the poll failed). */
  private scrape(t: Target, done: () => void): void {
    const t0 = performance.now();
    this.scrapes++;
    const finish = (err: Error | undefined, page: Buffer | undefined): void => {
      let signals: EndpointSignals | undefined;
      if (!err) {
        try {
          signals = signalsFromMetrics(page!, (this.opts.now ?? Date.now)());
        } catch (e) {
          err = e as Error;
        }
      }
      if (!signals) {
        this.failed(t, err!);
        done();
        return;
      }
      this.succeeded(t, t0);
      if (t.stopped) {
        done();
        return;
      }
      this.opts.store.writeSignals(t.endpoint.id, signals).then(done, (e: unknown) => {
        this.opts.hooks?.onStateError?.('writeSignals', e as Error);
        done();
      });
    };
    // undici's own timeouts (in t.request), not AbortSignal.timeout(): a signal and timer
    // per poll cost three times the CPU of the whole request at 50 ms x N endpoints.
    this.agent.dispatch(t.request, new PageRequest(t.url, finish));
  }

  private failed(t: Target, err: Error): void {
    this.errors++;
    const id = t.endpoint.id;
    this.opts.hooks?.onScrapeError?.(id, err);
    if (!t.failing) {
      t.failing = true;
      this.opts.logger.warn(
        { endpoint: id, url: t.url, err: err.message },
        'metrics scrape failing; signals will go stale',
      );
    }
  }

  private succeeded(t: Target, t0: number): void {
    const id = t.endpoint.id;
    if (t.failing) {
      t.failing = false;
      this.opts.logger.info({ endpoint: id }, 'metrics scrape recovered');
    }
    this.opts.hooks?.onScrape?.(id, (performance.now() - t0) / 1000);
  }
}
