// Reused buffers for request bodies that arrive in more than one chunk and
// must be read as one (the ext_proc path's scan needs contiguous bytes).
// A fresh buffer per body was an off-heap allocation the size of the body:
// page faults on every request (~0.1 ms at 220 KB) and, with grpc-js's own
// per-message buffers, the off-heap churn that makes V8 run full
// collections of the whole heap every few hundred requests. A buffer goes
// back to the pool only when its holder says nothing reads it any more
// (ext_proc: once the last reply that carries it has been serialized), so a
// body is never overwritten while read; one never released is simply
// collected.
//
// Size classes are powers of two from 64 KiB to 4 MiB; each class keeps at
// most what fits in RETAINED_BYTES_PER_CLASS, so the pool holds at most
// 7 x 8 MiB = 56 MiB, and only what peak traffic once needed at the same
// time (a body is held from the end of its arrival until its replies are
// written, not for the whole request). Bodies above the largest class get
// their own buffer, as before.

const MIN_CLASS_BYTES = 64 * 1024;
const MAX_CLASS_BYTES = 4 * 1024 * 1024;
const RETAINED_BYTES_PER_CLASS = 8 * 1024 * 1024;

/** Bytes lent by a pool, given back with release() (at most once; later calls do nothing). */
export interface PooledBytes {
  readonly bytes: Buffer;
  release(): void;
}

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();

  /** A buffer of exactly `length` bytes (a view of a pooled one); undefined above the largest class. */
  acquire(length: number): PooledBytes | undefined {
    if (length > MAX_CLASS_BYTES) return undefined;
    let size = MIN_CLASS_BYTES;
    while (size < length) size *= 2;
    const whole = this.free.get(size)?.pop() ?? Buffer.allocUnsafe(size);
    let released = false;
    return {
      bytes: whole.subarray(0, length),
      release: () => {
        if (released) return;
        released = true;
        let list = this.free.get(size);
        if (!list) this.free.set(size, (list = []));
        if ((list.length + 1) * size <= RETAINED_BYTES_PER_CLASS) list.push(whole);
      },
    };
  }

  /** Buffers held for reuse (tests). */
  get retained(): number {
    let n = 0;
    for (const l of this.free.values()) n += l.length;
    return n;
  }
}

/** The pool of the ext_proc request bodies (one per process: bodies are read on one thread). */
export const requestBodyPool = new BufferPool();
