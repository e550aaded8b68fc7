// ZMQ subscriptions to model servers' KV events, both ways round:
//  - connect: one SUB socket per discovered pod, connected to the pod's
//    publisher (vLLM binds `tcp://*:5557`); messages belong to that pod;
//  - bind: one SUB socket bound locally that producers connect to (llm-d);
//    each message belongs to the pod its topic names, `kv@<ip>:<port>@<model>`.
import { Subscriber } from 'zeromq';
import type { Logger } from 'pino';
import { decodeSeq, parsePodTopic } from '../kvcache/events.js';
import type { Endpoint } from '../scheduling/types.js';
import type { IndexerMetrics } from './metrics.js';
import { replayUrl } from './replay.js';

export const DEFAULT_KV_EVENTS_PORT = 5557;

export type MessageHandler = (pod: string, stream: string, seq: bigint, payload: Uint8Array) => void;

interface Conn {
  url: string;
  sock: Subscriber;
}

function zmqUrl(address: string, port: number): string {
  return address.includes(':') ? `tcp://[${address}]:${port}` : `tcp://${address}:${port}`;
}

export class KvEventSubscribers {
  private readonly conns = new Map<string, Conn>();
  /** Pod -> its replay socket, for the pods that declare one (kvEventsReplayPort). */
  private replayUrls = new Map<string, string>();
  private bound: Subscriber | undefined;
  private closed = false;

  constructor(
    private readonly onMessage: MessageHandler,
    private readonly log: Logger,
    private readonly metrics: IndexerMetrics,
  ) {}

  /**
   * Follows the discovered pods: connects to new ones, reconnects moved
   * ones, disconnects departed ones. Returns the pods that left.
   */
  setEndpoints(endpoints: readonly Endpoint[]): string[] {
    const want = new Map<string, string>();
    for (const e of endpoints) want.set(e.id, zmqUrl(e.address, e.kvEventsPort ?? DEFAULT_KV_EVENTS_PORT));
    this.replayUrls = new Map(
      endpoints
        .filter((e) => e.kvEventsReplayPort !== undefined)
        .map((e) => [e.id, replayUrl(e.address, e.kvEventsReplayPort!)]),
    );
    const left: string[] = [];
    for (const [pod, c] of this.conns) {
      const url = want.get(pod);
      if (url === c.url) continue;
      c.sock.close();
      this.conns.delete(pod);
      if (url === undefined) left.push(pod);
    }
    for (const [pod, url] of want) {
      if (this.conns.has(pod)) continue;
      const sock = new Subscriber({ linger: 0, receiveHighWaterMark: 100_000 });
      sock.subscribe();
      sock.connect(url);
      this.conns.set(pod, { url, sock });
      this.log.info({ pod, url }, 'subscribed to KV events');
      void this.pump(sock, () => pod, 'connect');
    }
    return left;
  }

  /** Binds a SUB socket that producers connect to; attribution by topic. */
  async bind(url: string): Promise<string> {
    const sock = new Subscriber({ linger: 0, receiveHighWaterMark: 100_000 });
    sock.subscribe();
    await sock.bind(url);
    this.bound = sock;
    const endpoint = sock.lastEndpoint ?? url;
    this.log.info({ url: endpoint }, 'bound KV event socket for producers to connect');
    void this.pump(sock, (topic) => parsePodTopic(topic)?.endpoint, 'bind');
    return endpoint;
  }

  private async pump(
    sock: Subscriber,
    podOf: (topic: string) => string | undefined,
    stream: string,
  ): Promise<void> {
    try {
      for await (const frames of sock) {
        if (frames.length !== 3) {
          this.metrics.decodeErrors.inc({ reason: 'frames' });
          continue;
        }
        const topic = frames[0]!.toString('utf8');
        const pod = podOf(topic);
        if (!pod) {
          this.metrics.decodeErrors.inc({ reason: 'topic' });
          this.log.debug({ topic }, 'KV event topic names no pod (expected kv@<ip>:<port>@<model>)');
          continue;
        }
        let seq: bigint;
        try {
          seq = decodeSeq(frames[1]!);
        } catch {
          this.metrics.decodeErrors.inc({ reason: 'seq' });
          continue;
        }
        try {
          this.onMessage(pod, stream, seq, frames[2]!);
        } catch (e) {
          this.log.error({ pod, err: (e as Error).message }, 'KV event handling failed');
        }
      }
    } catch (e) {
      if (!this.closed && !sock.closed)
        this.log.warn({ err: (e as Error).message }, 'KV event socket stopped');
    }
  }

  /** The replay socket of a discovered pod (either transport), or undefined. */
  replayUrlOf(pod: string): string | undefined {
    return this.replayUrls.get(pod);
  }

  connectedPods(): string[] {
    return [...this.conns.keys()];
  }

  close(): void {
    this.closed = true;
    for (const c of this.conns.values()) c.sock.close();
    this.conns.clear();
    this.bound?.close();
  }
}
