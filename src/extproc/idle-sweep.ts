// The per-stream idle timeout (--stream-idle-timeout) of every open stream,
// kept by one periodic sweep instead of a timer per stream. A timer per
// stream cost a setTimeout + unref + clearTimeout per stream and a refresh()
// per message (~1 us per request, issue 15); here a message only sets a
// flag. Each sweep clears the flags it finds set and notes the time; a
// stream whose flag stayed clear since a sweep at least idleMs ago is ended.
// So a stream is never ended before idleMs of silence (its last message came
// before the sweep that cleared its flag), and at most two sweep periods
// (idleMs / 4 together) after.
//
// The interval runs only while streams are watched: a sweep that finds none
// stops it, and the next watch starts it again. It is unref'd: it never
// keeps the process alive.

/** Sweeps per idle timeout: a stream is ended after idleMs to idleMs * (1 + 2 / SWEEPS) of silence. */
const SWEEPS = 8;

/** One watched stream: `heard()` on each message, `unwatch()` once it is over. */
export interface IdleWatch {
  heard(): void;
  unwatch(): void;
}

class Watched implements IdleWatch {
  /** A message came since the last sweep (a new stream counts as one). */
  recent = true;
  /** When the sweep that last found `recent` set ran. */
  quietSinceMs = 0;

  constructor(
    private readonly sweep: IdleSweep,
    readonly expire: () => void,
  ) {}

  heard(): void {
    this.recent = true;
  }

  unwatch(): void {
    this.sweep.unwatch(this);
  }
}

export interface IdleSweepOptions {
  /** Clock in ms (default performance.now). */
  now?: () => number;
}

export class IdleSweep {
  private readonly watched = new Set<Watched>();
  private timer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** How often the sweep runs. */
  readonly periodMs: number;

  /** `idleMs` > 0: a stream silent this long is expired. */
  constructor(
    readonly idleMs: number,
    opts: IdleSweepOptions = {},
  ) {
    this.now = opts.now ?? (() => performance.now());
    this.periodMs = Math.max(1, idleMs / SWEEPS);
  }

  /** Streams watched now. */
  get size(): number {
    return this.watched.size;
  }

  /** Whether the sweep's interval is running. */
  get running(): boolean {
    return this.timer !== undefined;
  }

  /** Watches one stream; `expire` runs once if it stays silent for idleMs (it is unwatched first). */
  watch(expire: () => void): IdleWatch {
    const w = new Watched(this, expire);
    this.watched.add(w);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), this.periodMs);
      this.timer.unref();
    }
    return w;
  }

  /** @internal (Watched.unwatch) */
  unwatch(w: Watched): void {
    this.watched.delete(w);
  }

  /** One pass over the watched streams (run by the interval; public for tests). */
  sweep(): void {
    if (this.watched.size === 0) {
      this.stop();
      return;
    }
    const now = this.now();
    // An expired stream's handler unwatches it (and may unwatch others): deleting
    // from a Set while iterating it is safe, and a deleted entry is not visited.
    for (const w of this.watched) {
      if (w.recent) {
        w.recent = false;
        w.quietSinceMs = now;
      } else if (now - w.quietSinceMs >= this.idleMs) {
        this.watched.delete(w);
        w.expire();
      }
    }
  }

  /** Stops the interval; watching again starts it. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
