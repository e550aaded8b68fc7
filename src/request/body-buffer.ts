// Collects a request body that arrives in chunks (ext_proc body messages,
// HTTP 'data' events) so that what it holds is the body and not the chunks:
// each chunk is copied into one growing buffer, so a million 1-byte chunks
// do not keep a million Buffer objects (and the frames they slice) alive
// (~116 bytes each: 1 MB sent as 1-byte chunks pinned 116 MB). Memory is at
// most twice the body size. The chunk count is bounded too: past it the
// sender is hostile or broken, and each chunk still costs a message.
//
// The same pass feeds the JSON shape scan, so a body nested too deep is
// refused at the chunk that goes too deep instead of after all of it.
//
// A caller whose chunks never change once handed over (ext_proc: grpc-js
// decodes each message into its own Buffer) can lend them instead
// (`borrowChunks`): chunks of 4 KiB and more are kept as they are and only
// runs of smaller ones are copied, so the body is copied once when finished
// — or not at all when it came in one chunk. Growing one buffer by doubling
// copied a 220 KB body about twice over and faulted in five fresh buffers
// (~0.13 ms per request). With a pool (ext_proc) that one copy goes into a
// reused buffer, given back by release() (body-pool.ts).
import { RequestError } from './errors.js';
import { DEFAULT_JSON_BOUNDS, JsonShapeScanner, type JsonBounds } from './json-scan.js';
import { requestBodyPool, type BufferPool, type PooledBytes } from './body-pool.js';

export interface BodyBufferOptions {
  maxBytes: number;
  /** Default: one chunk per 64 bytes of the limit, at least 1024. */
  maxChunks?: number;
  /** Scan as JSON with these bounds (default DEFAULT_JSON_BOUNDS); false = no scan. */
  json?: JsonBounds | false;
  /** Capacity to start with (e.g. a declared content-length); capped at maxBytes. */
  expectedBytes?: number;
  /** Keep chunks of BORROW_MIN_BYTES and more by reference: the caller never changes them afterwards. */
  borrowChunks?: boolean;
  /**
   * Borrow mode: join a body of several pieces in a buffer of this pool, given
   * back by release() (the caller then never reads the body again).
   */
  pool?: BufferPool;
}

/** Borrowed chunks at least this large are kept as they are; smaller ones are copied together. */
export const BORROW_MIN_BYTES = 4096;

const INITIAL_CAPACITY = 16 * 1024;
const EMPTY = Buffer.alloc(0);

export function defaultMaxChunks(maxBytes: number): number {
  return Math.max(1024, Math.floor(maxBytes / 64));
}

export class BodyBuffer {
  /** The body (copy mode), or the current run of small chunks (borrow mode). */
  private buf: Buffer;
  /** Bytes in `buf`. */
  private used = 0;
  /** Borrow mode: the body's pieces so far, in order (the run in `buf` not yet among them). */
  private readonly pieces: Buffer[] | undefined;
  private length = 0;
  private chunks = 0;
  private readonly maxChunks: number;
  private readonly scan: JsonShapeScanner | undefined;
  private lease: PooledBytes | undefined;

  constructor(private readonly opts: BodyBufferOptions) {
    this.maxChunks = opts.maxChunks ?? defaultMaxChunks(opts.maxBytes);
    if (opts.borrowChunks) {
      this.pieces = [];
      this.buf = EMPTY;
    } else {
      const want = opts.expectedBytes && opts.expectedBytes > 0 ? opts.expectedBytes : INITIAL_CAPACITY;
      this.buf = Buffer.allocUnsafe(Math.min(want, Math.max(opts.maxBytes, 1)));
    }
    this.scan = opts.json === false ? undefined : new JsonShapeScanner(opts.json ?? DEFAULT_JSON_BOUNDS);
  }

  get bytes(): number {
    return this.length;
  }

  get chunkCount(): number {
    return this.chunks;
  }

  /** Appends a chunk; throws RequestError 413 past the size or chunk limit, 400 past a JSON bound. */
  append(chunk: Uint8Array): void {
    this.chunks++;
    const size = this.length + chunk.length;
    if (size > this.opts.maxBytes) {
      throw new RequestError(
        413,
        `request body of ${size} bytes exceeds the limit of ${this.opts.maxBytes} bytes`,
      );
    }
    if (this.chunks > this.maxChunks) {
      throw new RequestError(
        413,
        `request body arrived in more than ${this.maxChunks} chunks (${this.length} bytes so far)`,
      );
    }
    if (chunk.length === 0) return;
    this.scan?.push(chunk);
    this.length = size;
    if (this.pieces && chunk.length >= BORROW_MIN_BYTES) {
      this.endRun();
      this.pieces.push(
        Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength),
      );
      return;
    }
    const need = this.used + chunk.length;
    if (need > this.buf.length) {
      const cap = this.pieces
        ? Math.max(need, this.buf.length * 2, 1024)
        : Math.max(need, this.buf.length * 2);
      const grown = Buffer.allocUnsafe(Math.min(cap, this.opts.maxBytes));
      this.buf.copy(grown, 0, 0, this.used);
      this.buf = grown;
    }
    this.buf.set(chunk, this.used);
    this.used = need;
  }

  /** Borrow mode: the run of small chunks becomes a piece; the next run starts in a new buffer. */
  private endRun(): void {
    if (this.used === 0) return;
    this.pieces!.push(this.buf.subarray(0, this.used));
    this.buf = EMPTY;
    this.used = 0;
  }

  /** The whole body (a view, or in borrow mode a chunk itself when it came in one); runs the end-of-text JSON checks. */
  finish(): Buffer {
    this.scan?.finish();
    if (!this.pieces) return this.buf.subarray(0, this.length);
    this.endRun();
    if (this.pieces.length === 1) return this.pieces[0]!;
    this.lease = this.opts.pool?.acquire(this.length);
    let whole: Buffer;
    if (this.lease) {
      whole = this.lease.bytes;
      let o = 0;
      for (const p of this.pieces) {
        whole.set(p, o);
        o += p.length;
      }
    } else whole = Buffer.concat(this.pieces, this.length);
    this.pieces.length = 0;
    this.pieces.push(whole);
    return whole;
  }

  /** Gives a pooled body back: neither finish()'s result nor anything read from it is used afterwards. */
  release(): void {
    const lease = this.lease;
    if (!lease) return;
    this.lease = undefined;
    if (this.pieces) this.pieces.length = 0;
    lease.release();
  }
}

/**
 * The buffer for an ext_proc request body: grpc-js's decoded chunks are
 * borrowed, never changed; a body of several pieces is joined in a pooled
 * buffer, which the stream gives back once its replies are serialized.
 */
export function requestBodyBuffer(maxBytes: number): BodyBuffer {
  return new BodyBuffer({ maxBytes, borrowChunks: true, pool: requestBodyPool });
}

/** Appends, returning the client error instead of throwing it (for callers that answer it). */
export function appendBodyChunk(body: BodyBuffer, chunk: Uint8Array): RequestError | undefined {
  try {
    body.append(chunk);
    return undefined;
  } catch (e) {
    if (e instanceof RequestError) return e;
    throw e;
  }
}
