// Asks a model server's KV-event replay socket (vLLM's ROUTER, the optional
// replay endpoint of --kv-events-config) for the batches it still buffers:
// a DEALER sends one frame, the 8-byte big-endian start sequence, and reads
// (seq, payload) frames until the end marker, sequence -1 with an empty
// payload (reference/vllm-pd-kv.md §3). One fresh socket per request, so a
// late answer to an abandoned request can never be read as the next one's.
import { Dealer } from 'zeromq';
import { decodeSeq, encodeSeq } from '../kvcache/events.js';

export interface ReplayedBatch {
  seq: bigint;
  payload: Uint8Array;
}

export interface ReplayOptions {
  /** Give up when the whole answer has not arrived by then. */
  timeoutMs: number;
  /** Refuse answers with more batches than this (memory bound). */
  maxBatches: number;
}

export class ReplayError extends Error {
  constructor(
    readonly reason: 'timeout' | 'too_large' | 'protocol' | 'socket',
    message: string,
  ) {
    super(message);
    this.name = 'ReplayError';
  }
}

/** tcp://host:port of a replay socket (IPv6 bracketed). */
export function replayUrl(address: string, port: number): string {
  return address.includes(':') ? `tcp://[${address}]:${port}` : `tcp://${address}:${port}`;
}

/** The batches with seq >= `from` that the producer at `url` still buffers, in order. */
export async function fetchReplay(url: string, from: bigint, opts: ReplayOptions): Promise<ReplayedBatch[]> {
  const sock = new Dealer({ linger: 0, connectTimeout: opts.timeoutMs, sendTimeout: opts.timeoutMs });
  const timer = setTimeout(() => sock.close(), opts.timeoutMs);
  const out: ReplayedBatch[] = [];
  try {
    sock.connect(url);
    await sock.send(encodeSeq(from));
    for (;;) {
      const frames = await sock.receive();
      // A DEALER sees [seq, payload]; a REQ-style server adds an empty delimiter first.
      const f = frames.length === 3 && frames[0]!.length === 0 ? frames.slice(1) : frames;
      if (f.length !== 2) throw new ReplayError('protocol', `replay answer with ${frames.length} frames`);
      let seq: bigint;
      try {
        seq = decodeSeq(f[0]!);
      } catch (e) {
        throw new ReplayError('protocol', (e as Error).message);
      }
      if (seq === -1n) break;
      const last = out.at(-1);
      if (seq < from || (last && seq <= last.seq))
        throw new ReplayError('protocol', `replay sequence ${seq} out of order`);
      if (out.length >= opts.maxBatches)
        throw new ReplayError('too_large', `replay answer over ${opts.maxBatches} batches`);
      out.push({ seq, payload: f[1]! });
    }
    return out;
  } catch (e) {
    if (e instanceof ReplayError) throw e;
    if (sock.closed)
      throw new ReplayError('timeout', `no complete replay from ${url} within ${opts.timeoutMs} ms`);
    throw new ReplayError('socket', `replay from ${url}: ${(e as Error).message}`);
  } finally {
    clearTimeout(timer);
    if (!sock.closed) sock.close();
  }
}
