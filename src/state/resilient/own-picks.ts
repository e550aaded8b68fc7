// The picks this replica committed and has not yet seen settled in Redis,
// numbered on one sequence shared with its reads. Redis runs one
// connection's commands in order, so "issued after read n" is exactly "not
// in the snapshot read n returned": that is what lets the shadow view and
// the own-pending overlay add precisely what a snapshot is missing.
import type { PickCommit, PickReceipt } from '../store.js';

export interface OwnPick {
  commit: PickCommit;
  /** 'redis': the receipt is Redis's; 'local': the overlay's (charged while degraded). */
  origin: 'redis' | 'local';
  receipt: PickReceipt;
  /** Sequence at which the commit was issued to Redis (or restored there). */
  seq: number;
  expiresAtMs: number;
  /**
   * The prefill-token charge's release: undefined while it is charged;
   * Infinity released here but not yet sent to Redis; else the sequence at
   * which it was sent (0: Redis never held that charge).
   */
  prefillDoneSeq?: number;
}

export interface ReleasedPick {
  pick: OwnPick;
  /** Sequence at which the release was sent to Redis; Infinity = not yet sent. */
  doneSeq: number;
}

export class OwnPicks {
  readonly open = new Map<string, OwnPick>();
  /** Releases a recent baseline may still contain (or Redis has not heard of yet). */
  released: ReleasedPick[] = [];
  private seq = 0;

  constructor(private readonly now: () => number) {}

  /** Numbers the next read, commit or release issued to Redis. */
  nextSeq(): number {
    return ++this.seq;
  }

  track(p: OwnPick): void {
    this.open.set(p.commit.chargeId, p);
    // Picks nobody releases (caller bug) must not pile up: forget them once their lease is long gone.
    if (this.open.size % 4096 === 0) {
      const now = this.now();
      for (const [id, o] of this.open) if (o.expiresAtMs < now) this.open.delete(id);
    }
  }

  /** Removes and returns the open pick of `chargeId`, if this replica has it. */
  take(chargeId: string): OwnPick | undefined {
    const p = this.open.get(chargeId);
    this.open.delete(chargeId);
    return p;
  }

  /** A read issued at `seq` succeeded: releases sent before it are in it and every later one. */
  settledBefore(seq: number): void {
    if (this.released.length > 0) this.released = this.released.filter((r) => r.doneSeq > seq);
  }

  unsentReleases(): ReleasedPick[] {
    return this.released.filter((r) => r.doneSeq === Infinity);
  }

  /** After a resync every release has been sent. */
  dropUnsent(): void {
    this.released = this.released.filter((r) => r.doneSeq !== Infinity);
  }
}

/** A pick released here that this replica never committed (another handle's). */
export function foreignPick(receipt: PickReceipt): OwnPick {
  const decision = {
    requestId: '',
    atMs: 0,
    model: '',
    profile: '',
    endpoint: '',
    promptTokens: 0,
    score: 0,
  };
  // seq Infinity: part of no baseline adjustment, only replayed on resync.
  return {
    commit: { chargeId: receipt.chargeId, charges: receipt.charges, leaseMs: 0, decision },
    origin: 'redis',
    receipt,
    seq: Number.POSITIVE_INFINITY,
    expiresAtMs: 0,
  };
}
