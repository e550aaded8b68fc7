// Optional wiring for N EPP replicas sharing Redis: every replica runs its
// own read-only endpoint source (Kubernetes or a file) and keeps its local set, but only
// the holder of the `discovery` lease writes the set into the shared state,
// so N replicas do not rewrite it N times per change. When the holder dies
// its lease expires and another replica takes over and writes its current
// set at once. When the store fails (Redis down) nobody is blocked: the
// local callback always runs, the write is retried on the next tick.
import type { Endpoint } from '../scheduling/types.js';
import type { StateStore } from '../state/store.js';

export interface LeasedPublisherOptions {
  store: Pick<StateStore, 'tryAcquireLease' | 'replaceEndpoints'>;
  /** This replica's identity (POD_NAME). */
  holder: string;
  leaseName?: string;
  /** Lease time to live (ms, default 10000); renewed every ttl/3. */
  ttlMs?: number;
  onError?: (err: Error) => void;
  /** Called on leadership changes (logs, metrics). */
  onLeader?: (leader: boolean) => void;
  /**
   * The leader rewrites its set at least this often (ms, default: the lease
   * ttl), so shared state lost or overwritten without a disconnect
   * (FLUSHALL, failover to an empty replica, a hostile write) heals without
   * waiting for the next discovery change. Replicas never schedule entries
   * their own discovery did not deliver (discovered-set.ts) meanwhile.
   */
  republishMs?: number;
  now?: () => number;
}

export class LeasedPublisher {
  private latest: Endpoint[] | undefined;
  private dirty = false;
  private leader = false;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private stopped = false;
  private lastWriteMs = 0;

  constructor(private readonly o: LeasedPublisherOptions) {}

  get isLeader(): boolean {
    return this.leader;
  }

  /** Hand every set the source publishes to this (after any local use). */
  update(endpoints: Endpoint[]): void {
    this.latest = endpoints;
    this.dirty = true;
    if (this.leader) void this.tick();
  }

  start(): void {
    const ttl = this.o.ttlMs ?? 10_000;
    void this.tick();
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(ttl / 3)));
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.ticking;
  }

  /** One renew-and-maybe-write round; rounds never overlap. */
  tick(): Promise<void> {
    if (this.ticking) return this.ticking;
    this.ticking = this.round().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    let holds = false;
    try {
      holds = await this.o.store.tryAcquireLease(
        this.o.leaseName ?? 'discovery',
        this.o.holder,
        this.o.ttlMs ?? 10_000,
      );
    } catch (e) {
      this.o.onError?.(new Error(`discovery lease: ${(e as Error).message}`));
    }
    if (holds !== this.leader) {
      this.leader = holds;
      // A new holder writes what it sees: the previous one may have died mid-change.
      if (holds) this.dirty = true;
      this.o.onLeader?.(holds);
    }
    const now = (this.o.now ?? Date.now)();
    if (holds && now - this.lastWriteMs >= (this.o.republishMs ?? this.o.ttlMs ?? 10_000)) this.dirty = true;
    if (!holds || !this.dirty || this.latest === undefined) return;
    const set = this.latest;
    this.dirty = false;
    try {
      await this.o.store.replaceEndpoints(set);
      this.lastWriteMs = now;
    } catch (e) {
      if (this.latest === set) this.dirty = true; // retry next round
      this.o.onError?.(new Error(`publishing endpoints: ${(e as Error).message}`));
    }
  }
}
