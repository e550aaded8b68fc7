// Redis StateStore: the state N stateless EPP replicas schedule from. Same
// semantics as MemoryStateStore (the contract suite runs on both); every
// read-modify-write is one Lua script (src/state/lua/scripts.ts), sent as
// EVALSHA by ioredis. Per request: readSnapshot = 1 round trip, commitPick =
// 1 (plus the prefix record behind it, held to the next turn, not awaited), release = 1.
// Keys live under `hermes:{<pool>}:` (docs/state.md).
import type { Writable } from 'node:stream';
import { withConnectCause, type RedisClient } from '../common/redis-connection.js';
import type {
  BlockKeys,
  BucketLoadRecord,
  Endpoint,
  EndpointSignals,
  PickCharges,
} from '../scheduling/types.js';
import {
  COMMIT_LUA,
  ENDPOINTS_LUA,
  LEASE_LUA,
  PREFILL_DONE_LUA,
  RECORD_LUA,
  RELEASE_LUA,
  RENEW_LUA,
  SNAPSHOT_LUA,
} from './lua/scripts.js';
import { ADMISSION_RESERVE_LUA } from './lua/admission.js';
import { splitHeads } from './admission.js';
import type {
  DecisionRecord,
  ForeignHead,
  PickCommit,
  PickReceipt,
  SnapshotQuery,
  StateSnapshot,
  StateStore,
  StoreHealth,
} from './store.js';

export type { RedisClient };

export interface RedisStoreOptions {
  /** InferencePool (or demo stack) name; keys are `hermes:{<pool>}:...`. */
  pool: string;
  /** Recent decisions kept (LTRIM bound). */
  decisionsLimit?: number;
  /** TTL of the signals hash, refreshed by every scrape write. */
  signalsTtlMs?: number;
  /** TTL of approximate-prefix entries, refreshed when a block is recorded again. */
  prefixTtlMs?: number;
  /** Extra life of the in-flight keys beyond the longest lease (cleanup when a pool goes away). */
  stateTtlMs?: number;
  /**
   * commitPick answers without waiting for Redis when the pick has no
   * bucket charge (whose receipt needs the pool event Redis assigns): the
   * commit is sent and applied in order on the connection, and a failure
   * reaches onBackgroundError instead of the caller. For the resilient
   * wrapper, which degrades and later restores the pick (restorePick).
   */
  commitWithoutWaiting?: boolean;
}

interface ScriptCommands {
  hermesSnapshot(key: string, ...args: Array<string | Buffer>): Promise<SnapshotReply>;
  hermesCommit(key: string, ...args: string[]): Promise<number>;
  hermesRecord(key: string, ...args: Array<string | Buffer>): Promise<number>;
  hermesRelease(key: string, ...args: string[]): Promise<number>;
  hermesPrefillDone(key: string, ...args: string[]): Promise<number>;
  hermesRenew(key: string, ...args: string[]): Promise<number>;
  hermesLease(key: string, ...args: string[]): Promise<number>;
  hermesEndpoints(key: string, ...args: string[]): Promise<number>;
  hermesAdmit(key: string, ...args: string[]): Promise<number | Array<string | number>>;
}

type SnapshotReply = [
  version: string,
  endpointsJson: string | null,
  signals: string[],
  inFlight: string[],
  loads: string[],
  event: string,
  prefixMatches: Array<string | number>,
  indexerAnswer: string | null,
  pendingPrefill: string[],
];

const SCRIPTS: Array<[keyof ScriptCommands, string]> = [
  ['hermesSnapshot', SNAPSHOT_LUA],
  ['hermesCommit', COMMIT_LUA],
  ['hermesRecord', RECORD_LUA],
  ['hermesRelease', RELEASE_LUA],
  ['hermesPrefillDone', PREFILL_DONE_LUA],
  ['hermesRenew', RENEW_LUA],
  ['hermesLease', LEASE_LUA],
  ['hermesEndpoints', ENDPOINTS_LUA],
  ['hermesAdmit', ADMISSION_RESERVE_LUA],
];

/** Registers the store's scripts on a client (idempotent). */
function defineScripts(client: RedisClient): RedisClient & ScriptCommands {
  const c = client as RedisClient & Partial<ScriptCommands>;
  if (!c.hermesSnapshot)
    for (const [name, lua] of SCRIPTS) client.defineCommand(name, { numberOfKeys: 1, lua });
  return c as RedisClient & ScriptCommands;
}

export function poolPrefix(pool: string): string {
  if (!pool || /[{}]/.test(pool))
    throw new Error(`invalid pool name for Redis keys: ${JSON.stringify(pool)}`);
  return `hermes:{${pool}}:`;
}

const REDIS_HEALTH: StoreHealth = { backend: 'redis', shared: true, degraded: false };

/** The bare Redis store: calls fail when Redis does (ResilientStateStore answers instead). */
export class RedisStateStore implements StateStore {
  readonly prefix: string;
  /** Redis round trips this store made (each call below is one). */
  roundTrips = 0;
  /** Prefix records sent behind a commit, which nobody waits for. */
  backgroundCommands = 0;
  /** A command nobody waits for failed (the resilient wrapper counts it and degrades). */
  onBackgroundError: ((op: string, err: Error) => void) | undefined;
  private readonly client: RedisClient & ScriptCommands;
  private readonly decisionsLimit: string;
  private readonly signalsTtlMs: number;
  private readonly prefixTtlMs: string;
  private readonly stateTtlMs: string;
  private readonly commitWithoutWaiting: boolean;
  /** The pool event of the last reply that carried one (the receipt of an unawaited commit). */
  private lastPoolEvent = 0;
  private endpointsVersion = '';
  private endpoints: Endpoint[] = [];
  /** Last error the client emitted: ioredis rejects connect() with only "Connection is closed.". */
  private lastClientError: Error | undefined;
  /** The wake channel's subscriber connection (opened by the first onWake) and its listeners. */
  private subscriber: RedisClient | undefined;
  private readonly wakeListeners = new Set<(from: string) => void>();
  /** The socket holdWrites() corked until the next event-loop turn, if any. */
  private heldStream: Writable | undefined;

  constructor(
    client: RedisClient,
    opts: RedisStoreOptions,
    private readonly ownsClient = true,
  ) {
    this.client = defineScripts(client);
    this.prefix = poolPrefix(opts.pool);
    this.decisionsLimit = String(opts.decisionsLimit ?? 1000);
    this.signalsTtlMs = opts.signalsTtlMs ?? 60_000;
    this.prefixTtlMs = String(opts.prefixTtlMs ?? 3_600_000);
    this.stateTtlMs = String(opts.stateTtlMs ?? 600_000);
    this.commitWithoutWaiting = opts.commitWithoutWaiting ?? false;
    client.on('error', (e: Error) => {
      this.lastClientError = e;
    });
  }

  health(): StoreHealth {
    return REDIS_HEALTH;
  }

  onHealthChange(): () => void {
    return () => undefined;
  }

  get redis(): RedisClient {
    return this.client;
  }

  /** Connects a lazily created client; rejects when Redis cannot be reached. */
  async connect(): Promise<void> {
    const status = this.client.status;
    if (status !== 'wait' && status !== 'end') return;
    this.lastClientError = undefined;
    try {
      await this.client.connect();
    } catch (e) {
      throw withConnectCause(e as Error, this.lastClientError);
    }
  }

  async ping(): Promise<void> {
    this.roundTrips++;
    await this.sent(this.client.ping());
  }

  async replaceEndpoints(endpoints: readonly Endpoint[]): Promise<void> {
    this.roundTrips++;
    await this.sent(
      this.client.hermesEndpoints(this.prefix, JSON.stringify(endpoints), ...endpoints.map((e) => e.id)),
    );
  }

  async writeSignals(endpointId: string, s: EndpointSignals): Promise<void> {
    const key = this.prefix + 'sig';
    this.roundTrips++;
    await this.sent(
      this.client.pipeline().hset(key, endpointId, encodeSignals(s)).pexpire(key, this.signalsTtlMs).exec(),
    ).then(pipelineErrors);
  }

  async readSnapshot(query: SnapshotQuery): Promise<StateSnapshot> {
    this.roundTrips++;
    // The admission reservation goes right before the snapshot on the same
    // connection: one round trip carries both (neither waits for the other).
    const a = query.admission;
    const reserved = a ? this.client.hermesAdmit(this.prefix, ...admitArgs(a)) : undefined;
    const read = this.client.hermesSnapshot(
      this.prefix,
      this.endpointsVersion,
      query.bucketLoads ? '1' : '0',
      query.indexerCacheKey ?? '',
      keysBlob(query.prefixHashes),
    );
    this.sendHeldWrites();
    // Both awaited together: a failed reservation must not leave the read's rejection unhandled.
    const [r, admitted] = await Promise.all([read, reserved]);
    const [version, endpointsJson, sig, inf, loads, event, px, ix, pft] = r;
    // The endpoint set changes rarely: it is only sent when its version moved.
    if (version !== this.endpointsVersion) {
      this.endpoints = endpointsJson ? (JSON.parse(endpointsJson) as Endpoint[]) : [];
      this.endpointsVersion = version;
    }
    const signals = new Map<string, EndpointSignals>();
    for (let i = 0; i < sig.length; i += 2) signals.set(sig[i]!, decodeSignals(sig[i + 1]!));
    const inFlight = new Map<string, number>();
    for (let i = 0; i < inf.length; i += 2) inFlight.set(inf[i]!, Number(inf[i + 1]));
    const pendingPrefillTokens = new Map<string, number>();
    for (let i = 0; i < pft.length; i += 2) pendingPrefillTokens.set(pft[i]!, Number(pft[i + 1]));
    const bucketLoads = new Map<string, BucketLoadRecord>();
    for (let i = 0; i < loads.length; i += 2) bucketLoads.set(loads[i]!, decodeLoad(loads[i + 1]!));
    const snap: StateSnapshot = {
      endpoints: this.endpoints,
      signals,
      inFlight,
      pendingPrefillTokens,
      bucketLoads,
      poolEvent: Number(event),
    };
    this.lastPoolEvent = snap.poolEvent;
    if (query.prefixHashes) {
      const m = new Map<string, number>();
      for (let i = 0; i < px.length; i += 2) m.set(String(px[i]), Number(px[i + 1]));
      snap.prefixMatches = m;
    }
    if (ix !== null) snap.indexerAnswer = ix;
    if (typeof admitted === 'number') snap.admissionsElsewhere = admitted;
    else if (admitted !== undefined) {
      snap.admissionsElsewhere = Number(admitted[0]);
      splitHeads(snap, a!.owner, decodeHeads(admitted));
    }
    return snap;
  }

  async commitPick(commit: PickCommit): Promise<PickReceipt> {
    const args = [
      'commit',
      commit.chargeId,
      String(commit.leaseMs),
      this.stateTtlMs,
      ...chargeArgs(commit.charges),
      JSON.stringify(commit.decision),
      this.decisionsLimit,
    ];
    this.roundTrips++;
    const b = commit.charges.bucket;
    const awaited = !this.commitWithoutWaiting || (b !== undefined && b.items.length > 0);
    const committed = this.client.hermesCommit(this.prefix, ...args);
    // A charge is never held: it leaves now (with any record held before it).
    this.sendHeldWrites();
    // The prefix record goes behind the commit on the same connection (so it
    // is applied before any later call of this replica) and the pick does not
    // wait for it: the answer needs only the commit's reply.
    const pr = commit.charges.prefixRecord;
    if (pr && pr.hashes.length > 0) {
      this.backgroundCommands++;
      this.holdWrites();
      this.client
        .hermesRecord(
          this.prefix,
          pr.endpointId,
          String(commit.prefixCapacityPerEndpoint ?? 31_250),
          this.prefixTtlMs,
          keysBlob(pr.hashes),
        )
        .catch((e: Error) => this.onBackgroundError?.('prefixRecord', e));
    }
    if (!awaited) {
      // Nothing in the receipt depends on the reply: the pick goes on now.
      committed.then(
        (ev) => {
          this.lastPoolEvent = Math.max(this.lastPoolEvent, ev);
        },
        (e: Error) => this.onBackgroundError?.('commitPick', e),
      );
      return { chargeId: commit.chargeId, charges: commit.charges, chargedAtEvent: this.lastPoolEvent };
    }
    const chargedAtEvent = await committed;
    this.lastPoolEvent = Math.max(this.lastPoolEvent, chargedAtEvent);
    return { chargeId: commit.chargeId, charges: commit.charges, chargedAtEvent };
  }

  /**
   * Holds this connection's writes until the event loop's next turn: the
   * caches a pick writes and nobody waits for (its prefix record, a fresh
   * cache-indexer answer) then leave in one socket write after the pick's
   * answer has gone out, shared by the picks of that turn, instead of a
   * syscall and a Redis script each inside the pick. Charges are never held
   * (the commit is written before): other replicas see them as soon as
   * before. The next call that waits for a reply sends held writes at once,
   * in its own write, and one socket keeps the order, so this replica always
   * reads its own records. Cluster clients write per node and are left alone.
   */
  private holdWrites(): void {
    if (this.heldStream) return;
    const stream = (this.client as { stream?: Writable }).stream;
    if (!stream || typeof stream.cork !== 'function' || this.client.status !== 'ready') return;
    stream.cork();
    this.heldStream = stream;
    setImmediate(() => this.sendHeldWrites());
  }

  /** A command just issued, sent now with whatever is held before it. */
  private sent<T>(reply: Promise<T>): Promise<T> {
    this.sendHeldWrites();
    return reply;
  }

  private sendHeldWrites(): void {
    const stream = this.heldStream;
    if (!stream) return;
    this.heldStream = undefined;
    stream.uncork();
  }

  /**
   * Resynchronisation after an outage: if the pick is still stored its lease
   * is renewed and its receipt event returned; otherwise `charges` are
   * charged now (no prefix record, no decision).
   */
  async restorePick(chargeId: string, charges: PickCharges, leaseMs: number): Promise<PickReceipt> {
    this.roundTrips++;
    const chargedAtEvent = await this.sent(
      this.client.hermesCommit(
        this.prefix,
        'restore',
        chargeId,
        String(leaseMs),
        this.stateTtlMs,
        ...chargeArgs(charges),
      ),
    );
    return { chargeId, charges, chargedAtEvent };
  }

  async release(receipt: PickReceipt, wakeFrom?: string): Promise<void> {
    const b = receipt.charges.bucket;
    const args = [receipt.chargeId, String(receipt.chargedAtEvent)];
    if (b && b.items.length > 0) args.push(...bucketArgs(b));
    else args.push('', '0');
    this.roundTrips++;
    const released = this.sent(this.client.hermesRelease(this.prefix, ...args));
    if (wakeFrom === undefined) {
      await released;
      return;
    }
    // Right behind it on the same connection: Redis runs the release first, so the woken see the room.
    const woken = this.client.publish(this.prefix + 'wake', wakeFrom);
    await Promise.all([released, woken]);
  }

  async releasePrefill(receipt: PickReceipt): Promise<void> {
    const p = receipt.charges.prefillTokens;
    if (!p || p.length === 0) return;
    this.roundTrips++;
    await this.sent(this.client.hermesPrefillDone(this.prefix, receipt.chargeId));
  }

  async cancelAdmission(id: string, wakeFrom?: string): Promise<void> {
    this.roundTrips++;
    if (wakeFrom === undefined) {
      await this.sent(this.client.zrem(this.prefix + 'adm', id));
      return;
    }
    // One write: Redis runs the withdrawal before the wake, so the woken see the room.
    await this.sent(
      this.client
        .pipeline()
        .zrem(this.prefix + 'adm', id)
        .publish(this.prefix + 'wake', wakeFrom)
        .exec(),
    ).then(pipelineErrors);
  }

  async clearHeads(owner: string): Promise<void> {
    this.roundTrips++;
    await this.sent(this.client.hdel(this.prefix + 'heads', owner));
  }

  onWake(cb: (from: string) => void): () => void {
    this.wakeListeners.add(cb);
    if (!this.subscriber) {
      // A subscribed connection takes no other command: a second one, opened here.
      const sub = (this.subscriber = this.client.duplicate());
      const channel = this.prefix + 'wake';
      sub.on('error', () => undefined);
      sub.on('message', (ch: string, from: string) => {
        if (ch === channel) for (const l of [...this.wakeListeners]) l(from);
      });
      // Commands are not queued while disconnected: subscribe whenever the connection is ready
      // (ioredis also re-subscribes on its own after a reconnect; a second SUBSCRIBE is harmless).
      sub.on('ready', () => void sub.subscribe(channel).catch(() => undefined));
      sub.connect().catch(() => undefined);
    }
    return () => this.wakeListeners.delete(cb);
  }

  async renewLeases(chargeIds: readonly string[], leaseMs: number): Promise<void> {
    if (chargeIds.length === 0) return;
    this.roundTrips++;
    await this.sent(this.client.hermesRenew(this.prefix, String(leaseMs), ...chargeIds));
  }

  async tryAcquireLease(name: string, holder: string, ttlMs: number): Promise<boolean> {
    this.roundTrips++;
    return (
      (await this.sent(
        this.client.hermesLease(this.prefix, name, holder, String(Math.max(1, Math.round(ttlMs)))),
      )) === 1
    );
  }

  async putIndexerAnswer(key: string, answer: string, ttlMs: number): Promise<void> {
    this.roundTrips++;
    this.holdWrites();
    await this.client.set(this.prefix + 'ix:' + key, answer, 'PX', Math.max(1, Math.round(ttlMs)));
  }

  async recentDecisions(limit: number): Promise<DecisionRecord[]> {
    if (limit <= 0) return [];
    this.roundTrips++;
    const raw = await this.sent(this.client.lrange(this.prefix + 'decisions', 0, limit - 1));
    return raw.map((r) => JSON.parse(r) as DecisionRecord);
  }

  async close(): Promise<void> {
    const sub = this.subscriber;
    this.subscriber = undefined;
    if (sub) {
      try {
        await sub.quit();
      } catch {
        sub.disconnect();
      }
    }
    if (!this.ownsClient) return;
    try {
      await this.sent(this.client.quit());
    } catch {
      this.client.disconnect();
    }
  }
}

/**
 * Block keys as Redis sees them: one argument of 8 bytes per key, the key's
 * float64 bytes (one-to-one for integers; a Float64Array is sent as is,
 * without a copy). The scripts cut it into 8-byte fields.
 */
export function keysBlob(keys: BlockKeys | undefined): Buffer {
  if (!keys || keys.length === 0) return EMPTY_BLOB;
  const f = keys instanceof Float64Array ? keys : Float64Array.from(keys);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength);
}
const EMPTY_BLOB = Buffer.alloc(0);

function admitArgs(a: NonNullable<SnapshotQuery['admission']>): string[] {
  const args = [a.id, a.owner, String(a.ttlMs)];
  if (!a.heads) return args;
  args.push(String(a.headsTtlMs ?? a.ttlMs), String(a.heads.length));
  for (const h of a.heads)
    args.push(String(h.priority), String(Math.max(0, Math.floor(h.ageMs))), String(h.seq));
  return args;
}

/** The admission script's heads answer: after the count, 5 fields per head (lua/admission.ts). */
function decodeHeads(r: Array<string | number>): ForeignHead[] {
  const out: ForeignHead[] = [];
  for (let i = 1; i + 4 < r.length; i += 5) {
    out.push({
      owner: String(r[i]),
      priority: Number(r[i + 1]),
      ageMs: Number(r[i + 2]),
      seq: Number(r[i + 3]),
      expiresInMs: Number(r[i + 4]),
    });
  }
  return out;
}

function bucketArgs(b: NonNullable<PickCharges['bucket']>): string[] {
  const out = [String(b.decayFactor), String(b.items.length)];
  for (const it of b.items) out.push(it.endpointId, it.bucket, String(it.amount));
  return out;
}

function chargeArgs(c: PickCharges): string[] {
  const out = [String(c.inFlight.length), ...c.inFlight];
  if (c.bucket && c.bucket.items.length > 0) out.push(...bucketArgs(c.bucket));
  else out.push('', '0');
  const p = c.prefillTokens ?? [];
  out.push(String(p.length));
  for (const it of p) out.push(it.endpointId, String(Math.max(0, Math.round(it.tokens))));
  return out;
}

function pipelineErrors(res: Array<[Error | null, unknown]> | null): void {
  for (const [err] of res ?? []) if (err) throw err;
}

function num(s: string | undefined): number | undefined {
  return s === undefined || s === '' ? undefined : Number(s);
}

export function encodeSignals(s: EndpointSignals): string {
  const base = `${s.waitingQueueSize ?? ''},${s.runningRequests ?? ''},${s.kvCacheUsage ?? ''},${s.updatedAtMs}`;
  // LoRA adapters ride as a fifth, URI-encoded field (no commas); older readers ignore it.
  return s.lora ? `${base},${encodeURIComponent(JSON.stringify(s.lora))}` : base;
}

export function decodeSignals(raw: string): EndpointSignals {
  const [w, r, kv, t, lora] = raw.split(',');
  const s: EndpointSignals = { updatedAtMs: Number(t) };
  const wq = num(w);
  if (wq !== undefined) s.waitingQueueSize = wq;
  const rr = num(r);
  if (rr !== undefined) s.runningRequests = rr;
  const k = num(kv);
  if (k !== undefined) s.kvCacheUsage = k;
  if (lora) {
    try {
      const v = JSON.parse(decodeURIComponent(lora)) as Record<string, unknown>;
      const names = (x: unknown) => Array.isArray(x) && x.every((n) => typeof n === 'string');
      if (names(v.running) && names(v.waiting) && typeof v.maxLora === 'number') {
        s.lora = { running: v.running as string[], waiting: v.waiting as string[], maxLora: v.maxLora };
      }
    } catch {
      // A corrupt field loses only the adapters.
    }
  }
  return s;
}

export function decodeLoad(raw: string): BucketLoadRecord {
  const [s, l, e] = raw.split(' ');
  return { short: Number(s), long: Number(l), atEvent: Number(e) };
}

// The connection (URL forms, Sentinel, Cluster, TLS, redaction) is shared with
// the cache-indexer: src/common/redis-connection.ts.
export {
  createRedisClient,
  parseRedisUrl,
  redactUrl,
  withConnectCause,
  type RedisConnectOptions,
} from '../common/redis-connection.js';
