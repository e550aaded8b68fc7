// vLLM's KV-cache event batches (msgpack) and the ZMQ message around them.
//
// Wire: a ZMQ multipart message [topic, seq (8-byte big-endian), payload].
// Payload encodings a consumer must read (reference/vllm-pd-kv.md §3):
//  - map-tagged (current): {ts, events: [{type: 'BlockStored', ...}], data_parallel_rank}
//  - array-like (older msgspec array_like structs): [ts, events, dp_rank?],
//    each event [tag, field1, field2, ...] in declaration order.
// Block hashes are bytes (SHA-256 digests) or integers, possibly uint64
// above 2^53: they are decoded as bigint and only ever used as opaque keys.
import { Decoder, Encoder } from '@msgpack/msgpack';

/** A producer's block hash as received: raw bytes or an integer. */
export type BlockHash = Uint8Array | bigint | number;

export interface BlockStored {
  type: 'BlockStored';
  blockHashes: BlockHash[];
  /** null for a root block (some producers send 0 instead; see isRootParent). */
  parentBlockHash: BlockHash | null;
  tokenIds: number[];
  blockSize: number;
  loraId: number | null;
  medium: string | null;
  loraName: string | null;
}

export interface BlockRemoved {
  type: 'BlockRemoved';
  blockHashes: BlockHash[];
  medium: string | null;
}

export interface AllBlocksCleared {
  type: 'AllBlocksCleared';
}

export type KvEvent = BlockStored | BlockRemoved | AllBlocksCleared;

export interface EventBatch {
  ts: number;
  events: KvEvent[];
  dataParallelRank: number | null;
}

export type PayloadEncoding = 'map' | 'array';

export class KvEventDecodeError extends Error {
  override name = 'KvEventDecodeError';
}

const encoder = new Encoder({ useBigInt64: true, ignoreUndefined: true });
const decoder = new Decoder({ useBigInt64: true });

/** A stable string for a producer's hash, usable as a Map key ('b' + hex, or 'i' + decimal). */
export function hashKey(h: BlockHash): string {
  if (h instanceof Uint8Array) return 'b' + Buffer.from(h.buffer, h.byteOffset, h.byteLength).toString('hex');
  return 'i' + h.toString();
}

/** Root blocks carry no parent: null, or 0 from some producers. */
export function isRootParent(h: BlockHash | null): boolean {
  return h === null || h === 0 || h === 0n || (h instanceof Uint8Array && h.byteLength === 0);
}

// ---- encoding (mock-vllm's publisher) ----

function eventToMap(e: KvEvent): Record<string, unknown> {
  switch (e.type) {
    case 'BlockStored':
      return {
        type: e.type,
        block_hashes: e.blockHashes,
        parent_block_hash: e.parentBlockHash,
        token_ids: e.tokenIds,
        block_size: e.blockSize,
        lora_id: e.loraId,
        medium: e.medium,
        lora_name: e.loraName,
      };
    case 'BlockRemoved':
      return { type: e.type, block_hashes: e.blockHashes, medium: e.medium };
    case 'AllBlocksCleared':
      return { type: e.type };
  }
}

function eventToArray(e: KvEvent): unknown[] {
  switch (e.type) {
    case 'BlockStored':
      return [
        e.type,
        e.blockHashes,
        e.parentBlockHash,
        e.tokenIds,
        e.blockSize,
        e.loraId,
        e.medium,
        e.loraName,
      ];
    case 'BlockRemoved':
      return [e.type, e.blockHashes, e.medium];
    case 'AllBlocksCleared':
      return [e.type];
  }
}

export function encodeBatch(batch: EventBatch, encoding: PayloadEncoding = 'map'): Uint8Array {
  if (encoding === 'array') {
    return encoder.encode([batch.ts, batch.events.map(eventToArray), batch.dataParallelRank]);
  }
  return encoder.encode({
    ts: batch.ts,
    events: batch.events.map(eventToMap),
    data_parallel_rank: batch.dataParallelRank,
  });
}

// ---- decoding (cache-indexer) ----

function fail(msg: string): never {
  throw new KvEventDecodeError(msg);
}

function asHash(v: unknown, where: string): BlockHash {
  if (v instanceof Uint8Array || typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  return fail(`${where}: expected a block hash (bytes or integer), got ${typeof v}`);
}

function asHashes(v: unknown, where: string): BlockHash[] {
  if (!Array.isArray(v)) fail(`${where}: expected a list of block hashes`);
  return v.map((h, i) => asHash(h, `${where}[${i}]`));
}

function asInt(v: unknown, where: string): number {
  if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n) return Number(v);
  if (typeof v === 'number' && Number.isInteger(v)) return v;
  return fail(`${where}: expected an integer`);
}

function asOptInt(v: unknown, where: string): number | null {
  return v === null || v === undefined ? null : asInt(v, where);
}

function asOptString(v: unknown, where: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  return fail(`${where}: expected a string`);
}

function asTokens(v: unknown, where: string): number[] {
  if (!Array.isArray(v)) fail(`${where}: expected a list of token ids`);
  const out = new Array<number>(v.length);
  for (let i = 0; i < v.length; i++) {
    const t = asInt(v[i], `${where}[${i}]`);
    if (t < 0 || t > 0xffffffff) fail(`${where}[${i}]: token id out of range`);
    out[i] = t;
  }
  return out;
}

function storedFrom(f: (name: string, idx: number) => unknown, where: string): BlockStored {
  const parent = f('parent_block_hash', 2);
  return {
    type: 'BlockStored',
    blockHashes: asHashes(f('block_hashes', 1), `${where}.block_hashes`),
    parentBlockHash:
      parent === null || parent === undefined ? null : asHash(parent, `${where}.parent_block_hash`),
    tokenIds: asTokens(f('token_ids', 3), `${where}.token_ids`),
    blockSize: asInt(f('block_size', 4), `${where}.block_size`),
    loraId: asOptInt(f('lora_id', 5), `${where}.lora_id`),
    medium: asOptString(f('medium', 6), `${where}.medium`),
    loraName: asOptString(f('lora_name', 7), `${where}.lora_name`),
  };
}

/** One event, or null for an event type this consumer does not know (skipped, not fatal). */
function decodeEvent(raw: unknown, where: string): KvEvent | null {
  let tag: unknown;
  let f: (name: string, idx: number) => unknown;
  if (Array.isArray(raw)) {
    tag = raw[0];
    f = (_name, idx) => raw[idx];
  } else if (raw instanceof Map) {
    tag = raw.get('type');
    f = (name) => raw.get(name);
  } else if (typeof raw === 'object' && raw !== null) {
    const obj = raw as Record<string, unknown>;
    tag = obj.type;
    f = (name) => obj[name];
  } else {
    return fail(`${where}: expected an event (map or array)`);
  }
  switch (tag) {
    case 'BlockStored':
      return storedFrom(f, where);
    case 'BlockRemoved':
      return {
        type: 'BlockRemoved',
        blockHashes: asHashes(f('block_hashes', 1), `${where}.block_hashes`),
        medium: asOptString(f('medium', 2), `${where}.medium`),
      };
    case 'AllBlocksCleared':
      return { type: 'AllBlocksCleared' };
    default:
      if (typeof tag !== 'string') fail(`${where}: event has no type tag`);
      return null;
  }
}

export interface DecodedBatch extends EventBatch {
  encoding: PayloadEncoding;
  /** Events whose type tag this consumer does not know (skipped). */
  unknownEvents: number;
}

/**
 * Blocks (stored or removed) one batch may carry. A batch is applied in one
 * go on the indexer's event loop (~28 us a block with its hashing): 100k
 * blocks held /match_sort for 1.7 s; 8,192 blocks (a 128k-token prompt in
 * blocks of 16, vLLM's largest single BlockStored) take about 0.2 s.
 */
export const MAX_BATCH_BLOCKS = 8_192;

export function decodeBatch(payload: Uint8Array): DecodedBatch {
  let doc: unknown;
  try {
    doc = decoder.decode(payload);
  } catch (e) {
    fail(`payload is not valid msgpack: ${(e as Error).message}`);
  }
  let ts: unknown;
  let events: unknown;
  let rank: unknown;
  let encoding: PayloadEncoding;
  if (Array.isArray(doc)) {
    [ts, events, rank] = doc;
    encoding = 'array';
  } else if (typeof doc === 'object' && doc !== null && !(doc instanceof Uint8Array)) {
    const obj = doc as Record<string, unknown>;
    ts = obj.ts;
    events = obj.events;
    rank = obj.data_parallel_rank;
    encoding = 'map';
  } else {
    return fail('payload is neither an event-batch map nor an array');
  }
  if (typeof ts !== 'number' && typeof ts !== 'bigint') fail('batch.ts: expected a number');
  if (!Array.isArray(events)) fail('batch.events: expected a list');
  if (events.length > MAX_BATCH_BLOCKS) fail(`batch.events: more than ${MAX_BATCH_BLOCKS} events`);
  const out: KvEvent[] = [];
  let unknownEvents = 0;
  let blocks = 0;
  for (let i = 0; i < events.length; i++) {
    const ev = decodeEvent(events[i], `events[${i}]`);
    if (ev) out.push(ev);
    else unknownEvents++;
    if (ev && ev.type !== 'AllBlocksCleared') blocks += ev.blockHashes.length;
  }
  if (blocks > MAX_BATCH_BLOCKS) fail(`batch holds ${blocks} blocks, more than ${MAX_BATCH_BLOCKS}`);
  return {
    ts: Number(ts),
    events: out,
    dataParallelRank: asOptInt(rank, 'batch.data_parallel_rank'),
    encoding,
    unknownEvents,
  };
}

// ---- ZMQ frames ----

export function encodeSeq(seq: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64BE(BigInt(seq));
  return b;
}

/** Sequence numbers are 8-byte big-endian; -1 (signed) ends a replay. */
export function decodeSeq(frame: Uint8Array): bigint {
  if (frame.byteLength !== 8) fail(`sequence frame must be 8 bytes, got ${frame.byteLength}`);
  return Buffer.from(frame.buffer, frame.byteOffset, 8).readBigInt64BE();
}

/** llm-d's topic naming the producing pod: `kv@<ip>:<port>@<model>`. */
export function podTopic(endpoint: string, model: string): string {
  return `kv@${endpoint}@${model}`;
}

/** The pod (`ip:port`) and model named by a `kv@<ip>:<port>@<model>` topic, or null. */
export function parsePodTopic(topic: string): { endpoint: string; model: string } | null {
  if (!topic.startsWith('kv@')) return null;
  const rest = topic.slice(3);
  const at = rest.indexOf('@', rest.startsWith('[') ? rest.indexOf(']') : 0);
  const endpoint = at < 0 ? rest : rest.slice(0, at);
  const model = at < 0 ? '' : rest.slice(at + 1);
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:@\s]+):\d{1,5}$/.test(endpoint)) return null;
  return { endpoint, model };
}
