// When to talk to Redis: healthy until a call fails, then degraded (every
// call answered locally) while a background probe retries every interval;
// the store leaves degraded mode once its resync succeeds. Logs once on
// entry, then at most one "still unavailable" line per interval.
import type { ResilienceCounters } from '../store.js';

/** pino-compatible. */
export interface StateLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface BreakerOptions {
  probeIntervalMs: number;
  logIntervalMs: number;
  logger: StateLogger | undefined;
  now: () => number;
  /** Ping + resynchronise; resolves when the store may leave degraded mode, rejects otherwise. */
  probe: () => Promise<void>;
  /** Called as degraded mode begins (before listeners hear of it). */
  onTrip: () => void;
}

export class Breaker {
  readonly counters: ResilienceCounters = {
    fallbacks: 0,
    errors: 0,
    degradedEntered: 0,
    resyncs: 0,
    resyncFailures: 0,
  };
  private isDegraded = false;
  private readonly listeners = new Set<(degraded: boolean) => void>();
  private timer: NodeJS.Timeout | undefined;
  private probing = false;
  private closed = false;
  private lastLogMs = 0;
  private fallbacksAtLastLog = 0;

  constructor(private readonly opts: BreakerOptions) {}

  get degraded(): boolean {
    return this.isDegraded;
  }

  /** Called with the new value each time degraded mode starts or ends; returns an unsubscribe. */
  onChange(cb: (degraded: boolean) => void): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** A call was answered locally. */
  fallback(): void {
    this.counters.fallbacks++;
  }

  /** A Redis call failed: enter (or stay in) degraded mode. */
  fail(op: string, err: Error): void {
    this.counters.errors++;
    if (this.isDegraded || this.closed) {
      this.logStill();
      return;
    }
    this.isDegraded = true;
    this.counters.degradedEntered++;
    this.opts.onTrip();
    this.lastLogMs = this.opts.now();
    this.fallbacksAtLastLog = this.counters.fallbacks;
    this.opts.logger?.warn(
      { op, err: err.message },
      'shared state (Redis) unavailable: scheduling from the last snapshot plus local charges',
    );
    this.emit(true);
    this.timer = setInterval(() => void this.probeOnce(), this.opts.probeIntervalMs);
    this.timer.unref();
  }

  /** The resync succeeded: back to Redis. */
  recovered(): void {
    this.isDegraded = false;
    this.stopTimer();
    this.counters.resyncs++;
    this.opts.logger?.info(
      { fallbacks: this.counters.fallbacks },
      'shared state (Redis) back: resynchronised',
    );
    this.emit(false);
  }

  /** One probe now (the timer does it otherwise); resolves true when healthy afterwards. */
  async probeOnce(): Promise<boolean> {
    if (this.probing || !this.isDegraded || this.closed) return !this.isDegraded;
    this.probing = true;
    try {
      await this.opts.probe();
    } catch {
      this.counters.errors++;
      this.counters.resyncFailures++;
      this.logStill();
    } finally {
      this.probing = false;
    }
    return !this.isDegraded;
  }

  close(): void {
    this.closed = true;
    this.stopTimer();
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private logStill(): void {
    const now = this.opts.now();
    if (now - this.lastLogMs < this.opts.logIntervalMs) return;
    this.opts.logger?.warn(
      { fallbacks: this.counters.fallbacks - this.fallbacksAtLastLog, errors: this.counters.errors },
      'shared state (Redis) still unavailable',
    );
    this.lastLogMs = now;
    this.fallbacksAtLastLog = this.counters.fallbacks;
  }

  private emit(degraded: boolean): void {
    for (const cb of this.listeners) {
      try {
        cb(degraded);
      } catch {
        // A metrics callback must not break the state path.
      }
    }
  }
}
