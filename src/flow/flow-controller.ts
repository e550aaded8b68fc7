// Flow control at the edge of the request path: the stream awaits pick()
// instead of Director.pick. While the pool is not saturated a request goes
// straight to the Director; when it is, a sheddable request (priority < 0)
// is refused at once (GIE's legacy 429) and any other waits in the
// BandQueue until capacity frees: a response ending here, another
// replica's, or fresh scraped signals (polled). Saturation is judged on the
// same snapshot the Director schedules from (every replica's charges and
// the shared signals), through PickOptions.admit, so nothing here reads the
// network itself and the scheduling core stays synchronous.
//
// A pick the gate let through is reserved until the Director has charged
// it: the gate judges the snapshot plus the picks let through and not yet
// charged, this replica's (counted here) and every other replica's (the
// store's shared admission count, read and added to in the snapshot's own
// atomic step), spread over the candidates. So a burst cannot all pass on
// one reading, on one replica or on N: of two concurrent judgements the
// later one sees the earlier's pick. When the shared store is unreachable
// the count is this replica's alone (hooks.judgedLocally).
//
// One dispatch at a time leaves the queue, oldest of the highest band
// first. While the pool is saturated, a warm request (its prompt mostly
// cached on its scheduled endpoint and little of it left to prefill, whose
// own queue has room: warm-admission.ts) goes anyway: a newcomer ahead of
// those waiting, and in the queue behind a head that is held (up to
// WARM_SCAN held-back tries a pass; a waiter found cold is not tried again
// until it is the head).
//
// Sheddable requests are admitted only below SHEDDABLE_SATURATION (Hermes:
// GIE sheds them at 1), and only to a scheduled endpoint with nothing
// waiting (roomFor), so what may not be shed never queues behind them
// inside a server.
//
// Across replicas (fairShare, when replicas share the store): every pick
// publishes this replica's queue heads and reads the others' in its
// admission step; when the pool has room for a request in turn but another
// replica's head is senior (a higher band, or the same band waiting longer),
// the room is left to it (fair-share.ts, which also bounds how long one head
// is yielded to) and the withdrawal wakes the other replicas.
//
// Outcomes (GIE's): dispatched; capacity reject 429 (a bound, the queue
// ahead already waiting past half the TTL, or a wait predicted past a
// quarter of it; a queued request whose predicted wait passes its TTL);
// TTL eviction 503; client gone 503 (never
// written: nobody listens); shutdown 429. Every one carries retry-after.
import type { Decision, PickOptions, SeenHeads } from '../director/director.js';
import type { EndpointView, LLMRequest } from '../scheduling/types.js';
import { SchedulingError } from '../scheduling/types.js';
import { BandQueue, type BandStats, type QueueItem } from './band-queue.js';
import type { FlowControlSettings } from '../config/flow-control.js';
import { withInTransit } from './in-transit.js';
import { isWarm, queueHasRoom } from './warm-admission.js';
import { fairShare, YIELD_LIMIT_MS, type OwnHead } from './fair-share.js';
import type { QueueHead } from '../state/store.js';

export type FlowRejectReason = 'capacity' | 'ttl' | 'cancelled' | 'shutdown';

/** Answered by flow control instead of being scheduled. */
export class FlowRejection extends Error {
  constructor(
    readonly status: 429 | 503,
    readonly reason: FlowRejectReason,
    message: string,
  ) {
    super(message);
    this.name = 'FlowRejection';
  }
}

/** Per-request facts flow control needs beside the LLMRequest. */
export interface FlowRequest {
  /** The InferenceObjective's priority (unknown = 0; < 0 sheddable). */
  priority: number;
  /** Body size, counted against maxBytes. */
  bytes: number;
  /** Aborted when the client (the gateway's stream) goes away. */
  signal?: AbortSignal;
  /** Its model was rewritten (InferenceModelRewrite or the rewrite header): counted per band. */
  rewritten?: boolean;
}

export interface FlowHooks {
  /** A request of this band arrived with its model rewritten. */
  rewritten?(priority: number): void;
  queued?(priority: number): void;
  /** Went to the Director after `waitMs` in the queue (0: the pool admitted it at once). */
  dispatched?(priority: number, waitMs: number): void;
  rejected?(priority: number, reason: FlowRejectReason, waitMs: number): void;
  /** A pick was judged without other replicas' admissions (the shared store unreachable). */
  judgedLocally?(): void;
  /** A request of this band had room and left it to an older one on another replica (fair-share.ts). */
  yielded?(priority: number): void;
}

/** Cross-replica fair dispatch (fair-share.ts): for replicas sharing the store. */
export interface FairShareOptions {
  /** The queue emptied: withdraw this replica's published heads (Director.clearQueueHeads; not awaited). */
  clearHeads(): void;
  /** Published heads lapse after this unless published again (default: HEADS_TTL_MS, at least 3 polls). */
  headsTtlMs?: number;
  /** How long one foreign head is yielded to (default YIELD_LIMIT_MS). */
  yieldLimitMs?: number;
}

export interface Picker {
  pick(req: LLMRequest, opts?: PickOptions): Promise<Decision>;
}

export interface FlowControllerOptions {
  settings: FlowControlSettings;
  director: Picker;
  /** The saturation detector: >= 1 means saturated. */
  saturation: (views: readonly EndpointView[]) => number;
  /** How often a non-empty queue re-judges the pool (the scrape period). */
  pollMs: number;
  now?: () => number;
  /** Runs `fn` after `ms`; returns its cancel (the simulator's virtual clock; default: an unref'd setTimeout). */
  setTimer?: (ms: number, fn: () => void) => () => void;
  hooks?: FlowHooks;
  /** Sheddable requests are refused from this saturation on (default SHEDDABLE_SATURATION). */
  sheddableSaturation?: number;
  /** Replicas share the store: dispatch fairly across their queues. Absent: this queue alone decides (one replica). */
  fairShare?: FairShareOptions;
}

/** A replica's published queue heads lapse after this (a dead replica's heads block nobody). */
export const HEADS_TTL_MS = 2_000;

function realTimer(ms: number, fn: () => void): () => void {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
}

/** Thrown through Director.pick when the pool is saturated: the request is held, not failed. */
class HeldBack extends Error {
  constructor(
    message: string,
    /** Judged cold on its scheduled endpoint (warm-admission.ts): not worth trying out of turn. */
    readonly cold = false,
    /** The scheduled endpoint's own queue is full: a spilling request is scheduled again without it. */
    readonly hot?: string,
    /** The pool had room, left to an older request on another replica (the Director then wakes them). */
    readonly leavesRoom = false,
  ) {
    super(message);
  }
}

/**
 * Requests of a priority above this spill (Hermes): when the endpoint the
 * scheduler chose is saturated on its own (its queue, KV left out, as warm
 * admission judges it), the pick is made once more without that endpoint,
 * so a burst of one high-priority application does not queue inside the
 * server holding its prompt while others have room.
 */
export const SPILL_ABOVE_PRIORITY = 0;

/**
 * How a pick is judged: 'turn' (nobody of its priority or higher waits, or
 * it heads the queue): GIE's pool gate, then warm admission; 'warm': out of
 * turn, warm admission only.
 */
type Turn = 'turn' | 'warm';

/**
 * Behind a held head, at most this many waiters are tried (and held back) in
 * one pass: each try is a snapshot read, and a pass runs at every release
 * and poll.
 */
const WARM_SCAN = 16;

/**
 * A newcomer is refused (429) while the oldest request it would queue behind
 * has already waited this share of the TTL: the queue's delay is at its
 * target, and waiting on would likely end in a TTL eviction (503): the
 * queue's own delay decides, as in CoDel.
 */
const WAIT_TARGET_SHARE = 0.5;
/**
 * Before the queue shows its delay, the recent dispatch rate predicts it: a
 * newcomer whose predicted wait passes this share of the TTL is refused too.
 * The rate counts every dispatch of the last second (at least one: a stuck
 * pool is predicted slow) once a quarter second of history exists.
 */
const PREDICTED_WAIT_SHARE = 0.25;
const RATE_WINDOW_MS = 1_000;
const RATE_MIN_SPAN_MS = 250;
/**
 * While others wait or the pool is past this saturation, a sheddable request
 * is refused: the servers' own queues stay short for what may not be shed
 * (they serve FCFS, so an admitted batch request delays a later chat one).
 */
export const SHEDDABLE_SATURATION = 0.5;

interface Waiter extends QueueItem {
  /** Names it among this replica's heads (QueueHead.seq). */
  readonly seq: number;
  /** Its last judgement found it cold: tried again only as the head. */
  cold?: boolean;
  readonly req: LLMRequest;
  readonly opts: PickOptions | undefined;
  resolve(d: Decision): void;
  reject(e: Error): void;
  readonly signal: AbortSignal | undefined;
  cancelTtl?: () => void;
  onAbort?: () => void;
}

export interface FlowState {
  queued: number;
  bytes: number;
  requestTtlMs: number;
  maxRequests: number;
  maxBytes: number;
  /** A newcomer is refused while the oldest request ahead of it has waited this long. */
  waitTargetMs: number;
  closing: boolean;
  bands: BandStats[];
}

export class FlowController {
  private readonly queue: BandQueue<Waiter>;
  private readonly now: () => number;
  private readonly hooks: FlowHooks;
  /** Picks the gate let through that the Director has not charged yet. */
  private reserved = 0;
  private pumping = false;
  private kickedWhilePumping = false;
  private readonly setTimer: (ms: number, fn: () => void) => () => void;
  private cancelPoll: (() => void) | undefined;
  private closing = false;
  /** Dispatches of the last RATE_WINDOW_MS, and the first one ever. */
  private dispatchTimes: number[] = [];
  private firstDispatchMs: number | undefined;
  private seq = 0;
  /** When this replica first yielded to each foreign head (fair-share.ts). */
  private yieldLedger: ReadonlyMap<string, number> = new Map();
  private readonly headsTtlMs: number;
  /** When the last admission step showed another replica's queue head (-Infinity: none showed). */
  private foreignHeadsSeenAtMs = -Infinity;

  constructor(private readonly opts: FlowControllerOptions) {
    this.queue = new BandQueue<Waiter>(opts.settings);
    this.now = opts.now ?? Date.now;
    this.hooks = opts.hooks ?? {};
    this.setTimer = opts.setTimer ?? realTimer;
    this.headsTtlMs = opts.fairShare?.headsTtlMs ?? Math.max(HEADS_TTL_MS, 3 * opts.pollMs);
  }

  get queued(): number {
    return this.queue.length;
  }

  /** Admits, queues or refuses one request; resolves with the Director's decision. */
  async pick(req: LLMRequest, opts: PickOptions | undefined, flow: FlowRequest): Promise<Decision> {
    if (flow.rewritten) this.hooks.rewritten?.(flow.priority);
    if (this.closing) throw shutdownRejection();
    if (flow.signal?.aborted) throw cancelled();
    const sheddable = flow.priority < 0;
    const inTurn = this.queue.aheadOf(flow.priority) === 0;
    // Out of turn only a warm request that may not be shed is tried.
    if (inTurn || !sheddable) {
      try {
        const d = await this.dispatch(req, { ...opts, sheddable }, inTurn ? 'turn' : 'warm', flow.priority);
        // The dispatch rate predicts the queue's waits: out-of-turn dispatches do not move it.
        if (inTurn) this.recordDispatch(this.now());
        this.hooks.dispatched?.(flow.priority, 0);
        return d;
      } catch (e) {
        if (!(e instanceof HeldBack)) throw e;
      }
    }
    // Saturated (or others already wait ahead): GIE's legacy shedding for the sheddable.
    if (sheddable) throw new SchedulingError('SATURATED', 'system saturated, sheddable request dropped');
    return this.enqueue(req, opts, flow);
  }

  /**
   * Whether a response ending here should wake the other replicas: this
   * queue is empty (so nothing here takes the room) and the last admission
   * step, within the heads' lifetime, showed another replica's queue head.
   * Without it they would find the room only at their next poll.
   */
  othersWaiting(): boolean {
    if (!this.opts.fairShare || this.queue.length > 0) return false;
    return this.now() - this.foreignHeadsSeenAtMs < this.headsTtlMs;
  }

  /** Wakes the queue: capacity may have freed (a response ended). */
  kick(): void {
    if (this.queue.length > 0) void this.pump();
  }

  /** Shutdown: refuses every queued request (429) and any newcomer; returns how many were queued. */
  close(): number {
    this.closing = true;
    this.stopPoll();
    const waiting = [...this.queue.items()];
    for (const w of waiting) this.settle(w, shutdownRejection(), 'shutdown');
    return waiting.length;
  }

  state(): FlowState {
    const s = this.opts.settings;
    return {
      queued: this.queue.length,
      bytes: this.queue.totalBytes,
      requestTtlMs: s.requestTtlMs,
      maxRequests: s.maxRequests,
      maxBytes: s.maxBytes,
      waitTargetMs: s.requestTtlMs * WAIT_TARGET_SHARE,
      closing: this.closing,
      bands: this.queue.stats(this.now()),
    };
  }

  private enqueue(req: LLMRequest, opts: PickOptions | undefined, flow: FlowRequest): Promise<Decision> {
    const nowMs = this.now();
    const ttlMs = this.opts.settings.requestTtlMs;
    const targetMs = ttlMs * WAIT_TARGET_SHARE;
    const oldest = this.queue.oldestAtOrAbove(flow.priority);
    if (oldest !== undefined && nowMs - oldest > targetMs) {
      this.hooks.rejected?.(flow.priority, 'capacity', 0);
      throw new FlowRejection(
        429,
        'capacity',
        `flow control: requests ahead have waited ${Math.round(nowMs - oldest)} ms, past the ${Math.round(targetMs)} ms target`,
      );
    }
    const rate = this.dispatchRate(nowMs);
    const ahead = this.queue.aheadOf(flow.priority);
    if (rate !== undefined && ((ahead + 1) / rate) * 1000 > ttlMs * PREDICTED_WAIT_SHARE) {
      this.hooks.rejected?.(flow.priority, 'capacity', 0);
      throw new FlowRejection(
        429,
        'capacity',
        `flow control: ${ahead} requests queued ahead, about ${Math.round(((ahead + 1) / rate) * 1000)} ms of wait`,
      );
    }
    return new Promise<Decision>((resolve, reject) => {
      const w: Waiter = {
        seq: ++this.seq,
        priority: flow.priority,
        bytes: flow.bytes,
        enqueuedAtMs: nowMs,
        req,
        opts: { ...opts, sheddable: false },
        signal: flow.signal,
        resolve,
        reject,
      };
      const verdict = this.queue.enqueue(w);
      if (verdict !== 'queued') {
        this.hooks.rejected?.(flow.priority, 'capacity', 0);
        const bound = verdict === 'band-full' ? `priority band ${flow.priority}` : 'queue';
        reject(new FlowRejection(429, 'capacity', `flow control: ${bound} at capacity`));
        return;
      }
      this.hooks.queued?.(flow.priority);
      w.cancelTtl = this.setTimer(ttlMs, () =>
        this.settle(
          w,
          new FlowRejection(503, 'ttl', `request timed out in queue: waited ${ttlMs} ms`),
          'ttl',
        ),
      );
      if (flow.signal) {
        w.onAbort = () => this.settle(w, cancelled(), 'cancelled');
        flow.signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.startPoll();
      void this.pump();
    });
  }

  /** Ends a queued request's wait with `e` (it leaves the queue; nothing was charged). */
  private settle(w: Waiter, e: FlowRejection, reason: FlowRejectReason): void {
    if (!this.queue.remove(w)) return;
    this.detach(w);
    this.hooks.rejected?.(w.priority, reason, this.now() - w.enqueuedAtMs);
    w.reject(e);
    this.afterRemoval();
  }

  private detach(w: Waiter): void {
    w.cancelTtl?.();
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
  }

  private afterRemoval(): void {
    if (this.queue.length > 0) return;
    this.stopPoll();
    // Nothing waits here any more: the others must not yield to a head that is gone.
    this.opts.fairShare?.clearHeads();
  }

  /** Dispatches from the head while the pool admits; one pick at a time. */
  private async pump(): Promise<void> {
    if (this.pumping) {
      this.kickedWhilePumping = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.kickedWhilePumping = false;
        this.refuseHopeless();
        // The head is tried in turn; once it is held, the warm ones behind it out of turn.
        let held: Waiter | undefined;
        let tries = 0;
        while (!this.closing) {
          const w = held === undefined ? this.queue.head() : this.nextWarm(held);
          if (!w) break;
          let d: Decision;
          try {
            d = await this.dispatch(w.req, w.opts, held === undefined ? 'turn' : 'warm', w.priority, w);
          } catch (e) {
            // The room is left to an older request elsewhere: nobody here takes it this pass.
            if (e instanceof HeldBack && e.leavesRoom) break;
            if (e instanceof HeldBack) {
              w.cold = e.cold;
              held = w;
              if (++tries > WARM_SCAN) break;
              continue;
            }
            // The Director refused it (no candidates, filtered out): that is its answer.
            if (this.queue.remove(w)) {
              this.detach(w);
              w.reject(e as Error);
              this.afterRemoval();
            }
            continue;
          }
          if (!this.queue.remove(w)) {
            // Expired or cancelled while its pick ran: undo the charge.
            void d.ticket.release();
            continue;
          }
          this.detach(w);
          const nowMs = this.now();
          if (held === undefined) this.recordDispatch(nowMs);
          this.hooks.dispatched?.(w.priority, nowMs - w.enqueuedAtMs);
          w.resolve(d);
          this.afterRemoval();
        }
      } while (this.kickedWhilePumping && this.queue.length > 0 && !this.closing);
    } finally {
      this.pumping = false;
    }
  }

  /** The first waiter after `after` not known cold, in dispatch order. */
  private nextWarm(after: Waiter): Waiter | undefined {
    let seen = false;
    for (const w of this.queue.items()) {
      if (seen && !w.cold) return w;
      if (w === after) seen = true;
    }
    return undefined;
  }

  /**
   * Director.pick behind the saturation gate; throws HeldBack when the pool
   * is saturated and the request is not admitted out of it (warm admission,
   * or a sheddable request's own rule).
   */
  private async dispatch(
    req: LLMRequest,
    opts: PickOptions | undefined,
    turn: Turn = 'turn',
    priority = 0,
    queued?: Waiter,
  ): Promise<Decision> {
    // A newcomer has waited 0; a waiter is named by its seq among the heads the store answers.
    const own: Head = { priority, ageMs: queued ? this.now() - queued.enqueuedAtMs : 0, seq: queued?.seq };
    if (priority <= SPILL_ABOVE_PRIORITY || opts?.sheddable === true)
      return this.dispatchOnce(req, opts, turn, false, own);
    try {
      return await this.dispatchOnce(req, opts, turn, true, own);
    } catch (e) {
      if (!(e instanceof HeldBack) || e.hot === undefined) throw e;
      const hot = e.hot;
      const only = opts?.candidates;
      const candidates = (ep: EndpointView['endpoint']) => ep.id !== hot && (only === undefined || only(ep));
      try {
        return await this.dispatchOnce(req, { ...opts, candidates }, turn, false, own);
      } catch (e2) {
        // Nowhere else: that is a hold like any other, not the request's answer.
        if (e2 instanceof SchedulingError && e2.code === 'NO_CANDIDATES') throw new HeldBack('saturated');
        throw e2;
      }
    }
  }

  private async dispatchOnce(
    req: LLMRequest,
    opts: PickOptions | undefined,
    turn: Turn,
    spill: boolean,
    own: Head,
  ): Promise<Decision> {
    let reserved = false;
    let pendingAtAdmit = 0;
    let poolFull = false;
    const sheddable = opts?.sheddable === true;
    const limit = sheddable ? (this.opts.sheddableSaturation ?? SHEDDABLE_SATURATION) : 1;
    const admit = (
      views: readonly EndpointView[],
      elsewhere: number | undefined,
      heads: SeenHeads | undefined,
    ) => {
      if (elsewhere === undefined) this.hooks.judgedLocally?.();
      if (heads !== undefined) this.foreignHeadsSeenAtMs = heads.foreign.length > 0 ? this.now() : -Infinity;
      const pending = this.reserved + (elsewhere ?? 0);
      if (turn === 'warm' || this.opts.saturation(withInTransit(withReserved(views, pending))) >= limit) {
        // A sheddable request is never admitted past the pool; another may be, warm (admitTarget).
        if (sheddable) throw new HeldBack('saturated');
        poolFull = true;
      } else if (heads !== undefined && this.yieldsTo(own, heads)) {
        throw new HeldBack('room left to an older request on another replica', false, undefined, true);
      }
      pendingAtAdmit = pending;
      this.reserved++;
      reserved = true;
    };
    const admitTarget = (primary: EndpointView, cachedShare: number | undefined) => {
      if (sheddable) {
        // A sheddable request goes only where nothing waits (see roomFor).
        if (!roomFor(primary, pendingAtAdmit, this.opts.saturation, limit)) throw new HeldBack('saturated');
        return;
      }
      const room = queueHasRoom(primary, pendingAtAdmit, this.opts.saturation);
      // Only a pool that admits spills: a saturated one leaves the choice to warm admission.
      if (spill && !poolFull && !room) throw new HeldBack('endpoint saturated', false, primary.endpoint.id);
      if (!poolFull) return;
      if (!isWarm(cachedShare, req.promptTokens)) throw new HeldBack('saturated', true);
      if (!room) throw new HeldBack('saturated');
    };
    const heads = this.opts.fairShare ? { heads: this.heads(), headsTtlMs: this.headsTtlMs } : undefined;
    try {
      return await this.opts.director.pick(req, { ...opts, ...heads, admit, admitTarget });
    } finally {
      if (reserved) this.reserved--;
    }
  }

  /** This replica's queue heads as published: per non-empty band, its oldest waiter. */
  private heads(): QueueHead[] {
    const nowMs = this.now();
    return this.queue
      .heads()
      .map((w) => ({ priority: w.priority, ageMs: nowMs - w.enqueuedAtMs, seq: w.seq }));
  }

  /**
   * Whether `own`, with room in the pool, leaves it to a senior head on
   * another replica (fair-share.ts). A queued head is judged by its age as
   * the store keeps it, on the clock of the foreign heads' ages.
   */
  private yieldsTo(own: Head, heads: SeenHeads): boolean {
    const fair = this.opts.fairShare;
    if (!fair) return false;
    const stored = own.seq === undefined ? undefined : heads.own.find((h) => h.seq === own.seq);
    const judged: OwnHead = { priority: own.priority, ageMs: stored?.ageMs ?? own.ageMs };
    const v = fairShare(
      judged,
      heads.foreign,
      this.yieldLedger,
      this.now(),
      fair.yieldLimitMs ?? YIELD_LIMIT_MS,
    );
    this.yieldLedger = v.ledger;
    if (v.yieldTo === undefined) return false;
    this.hooks.yielded?.(own.priority);
    return true;
  }

  /**
   * A queued request that the recent dispatch rate says cannot leave the
   * queue before its TTL is refused now (429) rather than evicted at the TTL
   * (503): it has lost less time, and a refusal can go elsewhere. Its
   * predicted wait is its place in the queue (everything ahead of it, higher
   * bands included) over the rate; the TTL eviction stays for a prediction
   * that fails (the rate jumps down after the check).
   */
  private refuseHopeless(): void {
    const nowMs = this.now();
    const rate = this.dispatchRate(nowMs);
    if (rate === undefined || this.queue.length === 0) return;
    const ttlMs = this.opts.settings.requestTtlMs;
    let place = 0;
    for (const w of [...this.queue.items()]) {
      place++;
      const predictedMs = (place / rate) * 1000;
      if (nowMs - w.enqueuedAtMs + predictedMs <= ttlMs) continue;
      place--;
      this.settle(
        w,
        new FlowRejection(
          429,
          'capacity',
          `flow control: ${place} requests ahead, about ${Math.round(predictedMs)} ms more of wait, past the ${ttlMs} ms TTL`,
        ),
        'capacity',
      );
    }
  }

  private recordDispatch(nowMs: number): void {
    this.firstDispatchMs ??= nowMs;
    const t = this.dispatchTimes;
    t.push(nowMs);
    let drop = 0;
    while (drop < t.length && t[drop]! < nowMs - RATE_WINDOW_MS) drop++;
    if (drop > 0) t.splice(0, drop);
  }

  /** Dispatches per second recently; undefined without enough history (see PREDICTED_WAIT_SHARE). */
  private dispatchRate(nowMs: number): number | undefined {
    if (this.firstDispatchMs === undefined) return undefined;
    const span = Math.min(RATE_WINDOW_MS, nowMs - this.firstDispatchMs);
    if (span < RATE_MIN_SPAN_MS) return undefined;
    let n = 0;
    for (let i = this.dispatchTimes.length - 1; i >= 0 && this.dispatchTimes[i]! >= nowMs - span; i--) n++;
    // Nothing dispatched for a while: the pool frees slots slower than one per span.
    return Math.max(n, 1) / (span / 1000);
  }

  private startPoll(): void {
    if (this.cancelPoll || this.closing) return;
    const tick = () => {
      this.cancelPoll = this.setTimer(this.opts.pollMs, tick);
      void this.pump();
    };
    this.cancelPoll = this.setTimer(this.opts.pollMs, tick);
  }

  private stopPoll(): void {
    this.cancelPoll?.();
    this.cancelPoll = undefined;
  }
}

/** The head a pick judges: a newcomer (no seq, waited 0) or a queued waiter. */
interface Head extends OwnHead {
  seq?: number;
}

/** The views with `reserved` more requests in flight, spread evenly over the candidates. */
function withReserved(views: readonly EndpointView[], reserved: number): readonly EndpointView[] {
  if (reserved === 0 || views.length === 0) return views;
  const each = reserved / views.length;
  return views.map((v) => ({ ...v, inFlight: v.inFlight + each }));
}

/**
 * Whether a sheddable request may go to `v`, the endpoint the scheduler
 * chose for it (its cache affinity kept): the detector judges that endpoint
 * on its own below `limit`, counting every pick let through and not yet
 * charged (`pending`, any replica's) as if it landed there, and nothing may
 * wait there (requests routed but not yet scraped count as waiting,
 * in-transit.ts): the servers queue FCFS, and what may not be shed must not
 * queue behind a sheddable request.
 */
function roomFor(
  v: EndpointView,
  pending: number,
  saturation: (views: readonly EndpointView[]) => number,
  limit: number,
): boolean {
  const one = withInTransit([pending > 0 ? { ...v, inFlight: v.inFlight + pending } : v]);
  return saturation(one) < limit && (one[0]!.waitingQueueSize ?? 0) === 0;
}

function shutdownRejection(): FlowRejection {
  return new FlowRejection(429, 'shutdown', 'endpoint picker shutting down; retry');
}

function cancelled(): FlowRejection {
  return new FlowRejection(503, 'cancelled', 'client disconnected while queued');
}
