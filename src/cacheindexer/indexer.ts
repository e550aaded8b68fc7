// The cache-indexer's core: applies each pod's KV event stream to its
// PodIndex, writes the resulting changes to the store (coalesced, in
// order), tracks stream sequence numbers, and answers prefix lookups.
// When a pod's stream skips sequence numbers (or is first seen mid-stream)
// and the pod has a replay socket, the missed batches are fetched and
// applied in order before anything newer; the pod's live messages wait
// meanwhile. Without a usable replay the gap is only counted and the pod
// marked incomplete.
import type { Logger } from 'pino';
import { chainBlockHashes, rootHash } from '../kvcache/block-hash.js';
import { decodeBatch, type DecodedBatch } from '../kvcache/events.js';
import type { BlockIndexStore, PodChange } from './index-store.js';
import type { IndexerMetrics } from './metrics.js';
import { emptyStats, indexKey, PodIndex } from './pod-index.js';
import type { ReplayedBatch } from './replay.js';

/**
 * Fetches the batches with seq >= `from` that `pod`'s producer still
 * buffers; undefined when the pod has no replay endpoint.
 */
export type ReplayFetcher = (pod: string, from: bigint) => Promise<ReplayedBatch[]> | undefined;

/** A pod's live messages held while its replay is in flight. */
interface PendingReplay {
  held: Array<{ stream: string; seq: bigint; payload: Uint8Array }>;
}

/** Live messages held per pod during a replay at most; later ones are dropped (a gap, detected later). */
const MAX_HELD = 100_000;

export interface MatchResult {
  endpoint: string;
  hitRate: number;
  matchedBlocks: number;
  totalBlocks: number;
}

export interface PodStatus {
  pod: string;
  blocks: number;
  batches: number;
  lastSeq: string | null;
  gaps: number;
  lastEventAt: number | null;
  /** True after lost events until the pod's index is rebuilt (cleared). */
  incomplete: boolean;
}

interface PodMeta {
  /** The pod's stream keys in `seqs` (dropPod and /pods without scanning every stream). */
  streams: Set<string>;
  /** Highest sequence number seen on any of its streams. */
  lastSeq: bigint | undefined;
  batches: number;
  gaps: number;
  lastEventAt: number | null;
  incomplete: boolean;
}

export interface IndexerOptions {
  blockSize: number;
  /** Prompt blocks looked up at most (longer prompts match on their first blocks). */
  maxLookupBlocks: number;
  log: Logger;
  metrics: IndexerMetrics;
  /** Replays missed batches; absent: gaps are only counted. */
  replay?: ReplayFetcher;
  /** After a failed replay (error, timeout), the pod's next gaps are not replayed for this long (default 10 s). */
  replayBackoffMs?: number;
}

export class CacheIndexer {
  private readonly pods = new Map<string, PodIndex>();
  private readonly meta = new Map<string, PodMeta>();
  private readonly seqs = new Map<string, bigint>();
  private pending: PodChange[] = [];
  private flushing: Promise<void> | undefined;
  private storeDirty = false;
  private warnedBlockSize = false;
  /** LoRA adapter names seen in BlockStored events (their blocks chain from their own root). */
  private readonly loraNames = new Set<string>();
  private readonly replays = new Map<string, PendingReplay>();
  /** Pod -> epoch ms before which no replay is tried again (after a failure). */
  private readonly replayBackoff = new Map<string, number>();

  constructor(
    readonly store: BlockIndexStore,
    private readonly opts: IndexerOptions,
  ) {}

  private pod(id: string): PodIndex {
    let p = this.pods.get(id);
    if (!p) {
      this.pods.set(id, (p = new PodIndex(id)));
      this.meta.set(id, {
        streams: new Set(),
        lastSeq: undefined,
        batches: 0,
        gaps: 0,
        lastEventAt: null,
        incomplete: false,
      });
    }
    return p;
  }

  /**
   * One ZMQ message from `pod`. `stream` names the producer connection
   * (sequence numbers are per stream and data-parallel rank).
   */
  onMessage(pod: string, stream: string, seq: bigint, payload: Uint8Array): void {
    const pending = this.replays.get(pod);
    if (pending) {
      if (pending.held.length < MAX_HELD) pending.held.push({ stream, seq, payload });
      else this.opts.metrics.decodeErrors.inc({ reason: 'replay_overflow' });
      return;
    }
    this.apply(pod, stream, seq, payload, true);
  }

  /** Replays in flight (tests, /healthz). */
  replaysInFlight(): number {
    return this.replays.size;
  }

  private apply(pod: string, stream: string, seq: bigint, payload: Uint8Array, mayReplay: boolean): void {
    const m = this.opts.metrics;
    let batch: DecodedBatch;
    try {
      batch = decodeBatch(payload);
    } catch (e) {
      m.decodeErrors.inc({ reason: 'payload' });
      this.opts.log.warn(
        { pod, seq: seq.toString(), err: (e as Error).message },
        'undecodable KV event batch dropped',
      );
      this.noteSeq(pod, `${pod}|${stream}#?`, seq);
      return;
    }
    const key = `${pod}|${stream}#${batch.dataParallelRank ?? 0}`;
    if (mayReplay && this.startReplay(pod, key, stream, seq, payload)) return;
    m.batches.inc();
    const idx = this.pod(pod);
    const meta = this.meta.get(pod)!;
    meta.batches++;
    meta.lastEventAt = Date.now();
    const change: PodChange = { pod };
    if (this.noteSeq(pod, key, seq) === 'restart') {
      // A restarted producer starts with an empty cache.
      idx.cleared(change);
      meta.incomplete = false;
    }
    const stats = emptyStats();
    for (const ev of batch.events) {
      m.events.inc({ type: ev.type });
      if (ev.type === 'BlockStored') {
        if (ev.blockSize !== this.opts.blockSize && !this.warnedBlockSize) {
          this.warnedBlockSize = true;
          this.opts.log.warn(
            { pod, eventBlockSize: ev.blockSize, blockSize: this.opts.blockSize },
            'producer block size differs from --block-size: its blocks will not match lookups',
          );
        }
        idx.stored(ev, change, stats);
        if (ev.loraName) this.loraNames.add(ev.loraName);
      } else if (ev.type === 'BlockRemoved') {
        idx.removed(ev, change, stats);
      } else {
        idx.cleared(change);
        meta.incomplete = false;
      }
    }
    if (stats.orphanBlocks) m.anomalies.inc({ kind: 'orphan' }, stats.orphanBlocks);
    if (stats.unknownRemovals) m.anomalies.inc({ kind: 'unknown_removal' }, stats.unknownRemovals);
    if (stats.malformedBlocks) m.anomalies.inc({ kind: 'malformed' }, stats.malformedBlocks);
    if (batch.unknownEvents) m.decodeErrors.inc({ reason: 'unknown_event_type' }, batch.unknownEvents);
    if (change.clear || change.add?.length || change.remove?.length) this.enqueue(change);
  }

  /**
   * Starts a replay when `seq` shows missed batches: a gap after the last
   * seen sequence, or a stream first seen mid-way (seq > 1; producers count
   * from 0 or 1). The message is held with the pod's later ones. False when
   * nothing was missed or no replay can be tried.
   */
  private startReplay(pod: string, key: string, stream: string, seq: bigint, payload: Uint8Array): boolean {
    const fetcher = this.opts.replay;
    if (!fetcher) return false;
    const last = this.seqs.get(key);
    const from = last === undefined ? 0n : last + 1n;
    if (last === undefined ? seq <= 1n : seq <= from) return false;
    if ((this.replayBackoff.get(pod) ?? 0) > Date.now()) return false;
    const started = fetcher(pod, from);
    if (!started) {
      // No replay endpoint: today's behaviour, counted once per pod and gap.
      this.opts.metrics.replays.inc({ result: 'unavailable' });
      return false;
    }
    const pending: PendingReplay = { held: [{ stream, seq, payload }] };
    this.replays.set(pod, pending);
    this.opts.log.info(
      { pod, from: from.toString(), seq: seq.toString(), first: last === undefined },
      last === undefined
        ? 'KV events joined mid-stream: replaying the buffered history'
        : 'KV event sequence gap: replaying the missed batches',
    );
    const t0 = Date.now();
    started.then(
      (batches) => this.finishReplay(pod, key, from, pending, batches, undefined, t0),
      (e: unknown) => this.finishReplay(pod, key, from, pending, [], e as Error, t0),
    );
    return true;
  }

  /**
   * Applies a replay's batches, then the live messages held meanwhile (a
   * live copy of a replayed batch is skipped), all in one synchronous run so
   * nothing interleaves. A replay that does not reach back to `from` leaves
   * the gap to noteSeq: counted, pod marked incomplete.
   */
  private finishReplay(
    pod: string,
    key: string,
    from: bigint,
    pending: PendingReplay,
    batches: ReplayedBatch[],
    err: Error | undefined,
    t0: number,
  ): void {
    // The pod left discovery meanwhile: dropPod already forgot it.
    if (this.replays.get(pod) !== pending) return;
    this.replays.delete(pod);
    const m = this.opts.metrics;
    const covered = !err && batches.length > 0 && batches[0]!.seq <= (from === 0n ? 1n : from);
    const result = err ? 'failed' : covered ? 'ok' : batches.length > 0 ? 'partial' : 'failed';
    m.replays.inc({ result });
    m.replayedBatches.inc(batches.length);
    const fields = {
      pod,
      from: from.toString(),
      batches: batches.length,
      firstReplayed: batches[0]?.seq.toString() ?? null,
      ms: Date.now() - t0,
    };
    if (result === 'ok') this.opts.log.info(fields, 'KV event replay applied');
    else if (result === 'partial') {
      // The endpoint works; only its buffer is short. The next gap may well fit in it.
      this.opts.log.warn(
        fields,
        from === 0n
          ? 'KV event replay does not reach back to the first batch: older blocks of this pod stay unknown'
          : 'KV event replay does not reach back far enough (producer buffer too small): index of this pod is incomplete',
      );
    } else {
      // A dead or slow endpoint: do not make every later gap wait for it.
      this.replayBackoff.set(pod, Date.now() + (this.opts.replayBackoffMs ?? 10_000));
      this.opts.log.warn(
        { ...fields, err: err?.message },
        'KV event replay failed: index of this pod is incomplete until new events fill it',
      );
    }
    const stream = pending.held[0]!.stream;
    const replayed = new Map<bigint, Uint8Array>();
    for (const b of batches) {
      replayed.set(b.seq, b.payload);
      // Batches the indexer already has are skipped (it never re-applies one).
      const last = this.seqs.get(key);
      if (last !== undefined && b.seq <= last) continue;
      this.apply(pod, stream, b.seq, b.payload, false);
    }
    for (const h of pending.held) {
      const r = replayed.get(h.seq);
      if (r && Buffer.from(r).equals(Buffer.from(h.payload))) continue;
      // A held message may show a new gap and start another replay: the rest waits for it.
      const again = this.replays.get(pod);
      if (again) again.held.push(h);
      else this.apply(pod, h.stream, h.seq, h.payload, true);
    }
  }

  /** Tracks a stream's sequence; reports gaps (events lost) and restarts (sequence going back). */
  private noteSeq(pod: string, stream: string, seq: bigint): 'ok' | 'gap' | 'restart' | 'first' {
    const last = this.seqs.get(stream);
    this.seqs.set(stream, seq);
    const podMeta = this.meta.get(pod);
    if (podMeta) {
      podMeta.streams.add(stream);
      if (podMeta.lastSeq === undefined || seq > podMeta.lastSeq) podMeta.lastSeq = seq;
    }
    if (last === undefined) return 'first';
    if (seq === last + 1n) return 'ok';
    const m = this.opts.metrics;
    if (seq <= last) {
      m.producerRestarts.inc();
      this.opts.log.warn(
        { pod, stream, last: last.toString(), seq: seq.toString() },
        'KV event sequence went back: producer restarted, pod index cleared',
      );
      return 'restart';
    }
    const missed = seq - last - 1n;
    m.gaps.inc();
    m.missedBatches.inc(Number(missed));
    const meta = this.meta.get(pod);
    if (meta) {
      meta.gaps++;
      meta.incomplete = true;
    }
    // What the lost batches stored is missing and what they removed may linger; both heal as
    // the pod's later events arrive. Clearing instead would hide the hot prefixes the pod
    // keeps cached and never announces again.
    this.opts.log.warn(
      { pod, stream, last: last.toString(), seq: seq.toString(), missed: missed.toString() },
      'KV event sequence gap: index of this pod is incomplete',
    );
    return 'gap';
  }

  /** Forgets a pod (it left discovery). */
  dropPod(pod: string): void {
    this.replays.delete(pod);
    this.replayBackoff.delete(pod);
    const idx = this.pods.get(pod);
    if (!idx) return;
    const change: PodChange = { pod };
    idx.cleared(change);
    this.pods.delete(pod);
    for (const k of this.meta.get(pod)?.streams ?? []) this.seqs.delete(k);
    this.meta.delete(pod);
    this.enqueue(change);
  }

  private enqueue(change: PodChange): void {
    this.pending.push(change);
    if (!this.flushing) this.flushing = this.flush();
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.store.apply(batch);
      } catch (e) {
        this.opts.metrics.storeErrors.inc({ op: 'apply' });
        if (!this.storeDirty)
          this.opts.log.error(
            { err: (e as Error).message },
            'index store write failed; will resync when it returns',
          );
        this.storeDirty = true;
      }
    }
    this.flushing = undefined;
  }

  /** Writes every pod's full key set again (after the store lost writes or restarted). */
  async resync(): Promise<void> {
    await this.flushing;
    this.storeDirty = false;
    for (const [pod, idx] of this.pods) {
      try {
        await this.store.replacePod(pod, idx.keys());
      } catch (e) {
        this.opts.metrics.storeErrors.inc({ op: 'resync' });
        this.storeDirty = true;
        this.opts.log.error({ pod, err: (e as Error).message }, 'index resync failed');
        return;
      }
    }
    this.opts.log.info({ pods: this.pods.size }, 'index store resynced');
  }

  /** Waits until queued writes reached the store (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Hit rates of `candidates` for a tokenized prompt, sorted best first. */
  async match(
    model: string,
    tokens: ArrayLike<number>,
    candidates: readonly string[],
  ): Promise<MatchResult[]> {
    const totalBlocks = Math.floor(tokens.length / this.opts.blockSize);
    const hashes = chainBlockHashes(tokens, this.opts.blockSize, undefined, this.opts.maxLookupBlocks);
    let runs = await this.store.lookup(hashes.map(indexKey), candidates);
    if (this.isLora(model)) {
      // Blocks of a LoRA adapter chain from a root seeded with its name.
      const lora = chainBlockHashes(tokens, this.opts.blockSize, rootHash(model), this.opts.maxLookupBlocks);
      const runs2 = await this.store.lookup(lora.map(indexKey), candidates);
      runs = runs.map((r, i) => Math.max(r, runs2[i]!));
    }
    const results = candidates.map((endpoint, i) => ({
      endpoint,
      hitRate: totalBlocks === 0 ? 0 : runs[i]! / totalBlocks,
      matchedBlocks: runs[i]!,
      totalBlocks,
    }));
    // Array.prototype.sort is stable: ties keep the caller's order.
    return results.sort((a, b) => b.hitRate - a.hitRate);
  }

  private isLora(model: string): boolean {
    return this.loraNames.has(model);
  }

  status(): PodStatus[] {
    const out: PodStatus[] = [];
    for (const [pod, idx] of this.pods) {
      const meta = this.meta.get(pod)!;
      const lastSeq = meta.lastSeq;
      out.push({
        pod,
        blocks: idx.blocks,
        batches: meta.batches,
        lastSeq: lastSeq === undefined ? null : lastSeq.toString(),
        gaps: meta.gaps,
        lastEventAt: meta.lastEventAt,
        incomplete: meta.incomplete,
      });
    }
    return out;
  }

  totals(): { pods: number; blocks: number } {
    let blocks = 0;
    for (const p of this.pods.values()) blocks += p.blocks;
    return { pods: this.pods.size, blocks };
  }
}
