// mock-vllm's KV event publisher, shaped like vLLM's ZMQ publisher: a PUB
// socket sending [topic, seq (8-byte BE), msgpack batch], events of one
// engine step batched together, the last `bufferSize` batches kept for a
// ROUTER replay socket. It binds (vLLM's way) and/or connects to a
// consumer's bound SUB socket (llm-d's way, topic `kv@<ip>:<port>@<model>`).
import { Publisher, Router } from 'zeromq';
import { encodeBatch, encodeSeq, decodeSeq, type KvEvent, type PayloadEncoding } from '../kvcache/events.js';

export interface KvPublisherOptions {
  /** Bind the PUB socket on this TCP port (0 or undefined: do not bind). */
  bindPort?: number;
  bindHost?: string;
  /** Consumers' bound SUB endpoints to connect to (tcp://host:port). */
  connect?: string[];
  /** Bind a ROUTER replay socket on this port. */
  replayPort?: number;
  topic: string;
  encoding: PayloadEncoding;
  /** Batches kept for replay. */
  bufferSize: number;
  dataParallelRank: number | null;
  onError?: (err: Error) => void;
}

const END_SEQ = encodeSeq(-1);

export class KvEventPublisher {
  private readonly pub = new Publisher({ sendHighWaterMark: 100_000, linger: 0 });
  private router: Router | undefined;
  private pending: KvEvent[] = [];
  private flushScheduled = false;
  private seq = 0n;
  private readonly buffer: Array<{ seq: bigint; payload: Uint8Array }> = [];
  private sendChain: Promise<void> = Promise.resolve();
  private closed = false;
  /** Batches and events published (for /metrics and tests). */
  batches = 0;
  events = 0;
  boundEndpoint: string | undefined;
  replayEndpoint: string | undefined;

  constructor(private readonly opts: KvPublisherOptions) {}

  async start(): Promise<void> {
    const host = this.opts.bindHost ?? '127.0.0.1';
    if (this.opts.bindPort) {
      await this.pub.bind(`tcp://${host}:${this.opts.bindPort}`);
      this.boundEndpoint = this.pub.lastEndpoint ?? undefined;
    }
    for (const ep of this.opts.connect ?? []) this.pub.connect(ep);
    if (this.opts.replayPort) {
      this.router = new Router({ linger: 0 });
      await this.router.bind(`tcp://${host}:${this.opts.replayPort}`);
      this.replayEndpoint = this.router.lastEndpoint ?? undefined;
      void this.serveReplay(this.router);
    }
  }

  /** Queues an event; all events queued in one tick go out as one batch. */
  emit(ev: KvEvent): void {
    if (this.closed) return;
    this.pending.push(ev);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || this.closed) return;
    const events = this.pending;
    this.pending = [];
    const payload = encodeBatch(
      { ts: Date.now() / 1000, events, dataParallelRank: this.opts.dataParallelRank },
      this.opts.encoding,
    );
    const seq = this.seq++;
    this.buffer.push({ seq, payload });
    if (this.buffer.length > this.opts.bufferSize) this.buffer.shift();
    this.batches++;
    this.events += events.length;
    const frames = [Buffer.from(this.opts.topic), encodeSeq(seq), payload];
    // zeromq allows one send in flight per socket: chain them.
    this.sendChain = this.sendChain
      .then(() => this.pub.send(frames))
      .catch((e: Error) => this.opts.onError?.(e));
  }

  private async serveReplay(router: Router): Promise<void> {
    try {
      for await (const frames of router) {
        // DEALER clients send [start]; REQ clients (and vLLM's example) add an empty delimiter.
        const id = frames[0]!;
        const delimited = frames.length >= 3;
        const startFrame = frames[frames.length - 1]!;
        const prefix = delimited ? [id, Buffer.alloc(0)] : [id];
        let start: bigint;
        try {
          start = decodeSeq(startFrame);
        } catch (e) {
          this.opts.onError?.(e as Error);
          continue;
        }
        for (const b of this.buffer.slice()) {
          if (b.seq >= start) await router.send([...prefix, encodeSeq(b.seq), b.payload]);
        }
        await router.send([...prefix, END_SEQ, Buffer.alloc(0)]);
      }
    } catch (e) {
      if (!this.closed) this.opts.onError?.(e as Error);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    await this.sendChain;
    this.pub.close();
    this.router?.close();
  }
}
