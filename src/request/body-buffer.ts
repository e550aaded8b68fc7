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
import { RequestError } from './errors.js';
import { DEFAULT_JSON_BOUNDS, JsonShapeScanner, type JsonBounds } from './json-scan.js';

export interface BodyBufferOptions {
  maxBytes: number;
  /** Default: one chunk per 64 bytes of the limit, at least 1024. */
  maxChunks?: number;
  /** Scan as JSON with these bounds (default DEFAULT_JSON_BOUNDS); false = no scan. */
  json?: JsonBounds | false;
  /** Capacity to start with (e.g. a declared content-length); capped at maxBytes. */
  expectedBytes?: number;
}

const INITIAL_CAPACITY = 16 * 1024;

export function defaultMaxChunks(maxBytes: number): number {
  return Math.max(1024, Math.floor(maxBytes / 64));
}

export class BodyBuffer {
  private buf: Buffer;
  private length = 0;
  private chunks = 0;
  private readonly maxChunks: number;
  private readonly scan: JsonShapeScanner | undefined;

  constructor(private readonly opts: BodyBufferOptions) {
    this.maxChunks = opts.maxChunks ?? defaultMaxChunks(opts.maxBytes);
    const want = opts.expectedBytes && opts.expectedBytes > 0 ? opts.expectedBytes : INITIAL_CAPACITY;
    this.buf = Buffer.allocUnsafe(Math.min(want, Math.max(opts.maxBytes, 1)));
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
    if (size > this.buf.length) {
      const grown = Buffer.allocUnsafe(Math.min(Math.max(size, this.buf.length * 2), this.opts.maxBytes));
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    this.buf.set(chunk, this.length);
    this.length = size;
  }

  /** The whole body (a view, not a copy); runs the end-of-text JSON checks. */
  finish(): Buffer {
    this.scan?.finish();
    return this.buf.subarray(0, this.length);
  }
}

/** The buffer for an ext_proc request body: sized from content-length when declared. */
export function requestBodyBuffer(maxBytes: number, headers: Readonly<Record<string, string>>): BodyBuffer {
  const declared = Number(headers['content-length']);
  return new BodyBuffer({ maxBytes, expectedBytes: Number.isFinite(declared) ? declared : undefined });
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
