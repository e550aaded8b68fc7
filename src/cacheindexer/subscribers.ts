// ZMQ subscriptions to model servers' KV events, both ways round:
//  - connect: one SUB socket per discovered pod, connected to the pod's
//    publisher (vLLM binds `tcp://*:5557`); messages belong to that pod;
//  - bind: one SUB socket bound locally that producers connect to (llm-d);
//    each message belongs to the pod its topic names, `kv@<ip>:<port>@<model>`.
//
// Trust: with discovery (an endpoints file or an InferencePool), a bound
// socket accepts connections only from the IP addresses of discovered pods
// (checked in the ZeroMQ handshake, zap.ts) and messages only for topics
// naming a discovered pod; a pod that leaves discovery is forgotten. ZeroMQ
// does not say which connection a message came from, so on a bound socket a
// discovered pod could still name another discovered pod's topic; the
// connect mode (one subscription per pod, topics ignored) has no such gap.
// Without discovery (bind only), topics are believed from any sender, as
// before, but the pod count is bounded and silent pods expire.
// Frames over `maxMessageBytes` are refused by ZeroMQ itself (the peer is
// disconnected), so a 300 MB frame is never buffered.
import { Subscriber } from 'zeromq';
import type { Logger } from 'pino';
import { decodeSeq, parsePodTopic } from '../kvcache/events.js';
import type { Endpoint } from '../scheduling/types.js';
import type { IndexerMetrics } from './metrics.js';
import { replayUrl } from './replay.js';
import { normalizeAddress, registerSenderCheck, unregisterSenderCheck } from './zap.js';

export const DEFAULT_KV_EVENTS_PORT = 5557;

export type MessageHandler = (pod: string, stream: string, seq: bigint, payload: Uint8Array) => void;

export interface SubscriberOptions {
  /**
   * Endpoints come from discovery (setEndpoints): only discovered pods are
   * believed, from the start (messages before the first set are dropped).
   */
  discovery?: boolean;
  /** A pod was forgotten (left discovery, or expired): drop its index. */
  onPodGone?: (pod: string) => void;
  /** Largest ZeroMQ message accepted (default 8 MiB). */
  maxMessageBytes?: number;
  /** Without discovery: at most this many pods named by topics (default 10,000). */
  maxTopicPods?: number;
  /** Without discovery: a topic pod silent this long is forgotten (default 30 min). */
  topicPodIdleMs?: number;
  now?: () => number;
}

export const DEFAULT_MAX_KV_MESSAGE_BYTES = 8 * 1024 * 1024;
const YIELD_AFTER_MS = 20;

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
  private zapDomain: string | undefined;
  private closed = false;
  /** Discovered pod ids and their addresses; undefined until the first set (or without discovery). */
  private discovered: Set<string> | undefined;
  private discoveredAddresses = new Set<string>();
  /** Without discovery: pods named by topics -> last message time. */
  private readonly topicPods = new Map<string, number>();
  private expiry: NodeJS.Timeout | undefined;

  constructor(
    private readonly onMessage: MessageHandler,
    private readonly log: Logger,
    private readonly metrics: IndexerMetrics,
    private readonly opts: SubscriberOptions = {},
  ) {
    if (opts.discovery) this.discovered = new Set();
  }

  private socket(): Subscriber {
    return new Subscriber({
      linger: 0,
      receiveHighWaterMark: 100_000,
      maxMessageSize: this.opts.maxMessageBytes ?? DEFAULT_MAX_KV_MESSAGE_BYTES,
    });
  }

  /**
   * Follows the discovered pods: connects to new ones, reconnects moved
   * ones, disconnects departed ones. Returns the pods that left.
   */
  setEndpoints(endpoints: readonly Endpoint[]): string[] {
    const before = this.discovered;
    this.discovered = new Set(endpoints.map((e) => e.id));
    this.discoveredAddresses = new Set(endpoints.map((e) => normalizeAddress(e.address)));
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
    // Pods known only from topics on the bound socket leave with discovery too.
    for (const pod of before ?? []) if (!this.discovered.has(pod) && !left.includes(pod)) left.push(pod);
    for (const [pod, url] of want) {
      if (this.conns.has(pod)) continue;
      const sock = this.socket();
      sock.subscribe();
      sock.connect(url);
      this.conns.set(pod, { url, sock });
      this.log.info({ pod, url }, 'subscribed to KV events');
      void this.pump(sock, () => pod, 'connect');
    }
    return left;
  }

  /** Binds a SUB socket that producers connect to; attribution by topic (see the trust notes on top). */
  async bind(url: string): Promise<string> {
    const sock = this.socket();
    if (this.discovered) {
      this.zapDomain = await registerSenderCheck((address) => this.discoveredAddresses.has(address));
      sock.zapDomain = this.zapDomain;
    } else {
      this.log.warn(
        'KV events on the bound socket are credited to the pod their topic names, from any sender: give discovery (--endpoints-file or --pool-name) to accept discovered pods only',
      );
      const idleMs = this.opts.topicPodIdleMs ?? 30 * 60_000;
      this.expiry = setInterval(() => this.expireTopicPods(idleMs), Math.min(idleMs, 60_000));
      this.expiry.unref();
    }
    sock.subscribe();
    await sock.bind(url);
    this.bound = sock;
    const endpoint = sock.lastEndpoint ?? url;
    this.log.info({ url: endpoint }, 'bound KV event socket for producers to connect');
    void this.pump(sock, (topic) => this.topicPod(topic), 'bind');
    return endpoint;
  }

  /** The pod a bound-socket message may be credited to, or undefined (counted). */
  private topicPod(topic: string): string | undefined {
    const pod = parsePodTopic(topic)?.endpoint;
    if (!pod) return undefined;
    if (this.discovered) {
      if (this.discovered.has(pod)) return pod;
      this.metrics.decodeErrors.inc({ reason: 'undiscovered_pod' });
      return undefined;
    }
    const now = (this.opts.now ?? Date.now)();
    if (!this.topicPods.has(pod) && this.topicPods.size >= (this.opts.maxTopicPods ?? 10_000)) {
      this.metrics.decodeErrors.inc({ reason: 'pod_limit' });
      return undefined;
    }
    this.topicPods.set(pod, now);
    return pod;
  }

  /** Without discovery: forgets topic pods silent for `idleMs` (returns them; onPodGone is called). */
  expireTopicPods(idleMs: number): string[] {
    const cutoff = (this.opts.now ?? Date.now)() - idleMs;
    const gone: string[] = [];
    for (const [pod, at] of this.topicPods) {
      if (at > cutoff) continue;
      this.topicPods.delete(pod);
      gone.push(pod);
      this.opts.onPodGone?.(pod);
    }
    if (gone.length) this.log.info({ pods: gone.length }, 'forgot KV event pods that went silent');
    return gone;
  }

  private async pump(
    sock: Subscriber,
    podOf: (topic: string) => string | undefined,
    stream: string,
  ): Promise<void> {
    let sliceStart = performance.now();
    try {
      for await (const frames of sock) {
        // Queued messages resolve one after another without returning to the
        // event loop: after ~20 ms of work let HTTP (/match_sort) run first.
        if (performance.now() - sliceStart > YIELD_AFTER_MS) {
          await new Promise((r) => setImmediate(r));
          sliceStart = performance.now();
        }
        if (frames.length !== 3) {
          this.metrics.decodeErrors.inc({ reason: 'frames' });
          continue;
        }
        const topic = frames[0]!.toString('utf8');
        const pod = podOf(topic);
        if (!pod) {
          // Refusals of topics naming pods outside discovery were counted already.
          if (!parsePodTopic(topic)) this.metrics.decodeErrors.inc({ reason: 'topic' });
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
    if (this.expiry) clearInterval(this.expiry);
    if (this.zapDomain) unregisterSenderCheck(this.zapDomain);
  }
}
