// The ExternalProcessor gRPC service: one ProcessStream per Process call,
// dead connections found and their picks released (keepalive pings, a
// per-stream idle timeout kept by one sweep: idle-sweep.ts), and draining
// on shutdown (the Director renews the leases of open picks and releases
// what a drain cut). The service runs on either server transport
// (--extproc-transport): grpc-js, or the lean node:http2 one
// (h2-transport.ts). Both hand it a call with the same surface
// (ExtProcCall), so a stream's handling does not depend on which.
import * as grpc from '@grpc/grpc-js';
import { hostPort } from '../common/net.js';
import { LeanGrpcServer } from './h2-transport.js';
import { IdleSweep } from './idle-sweep.js';
import type { ProcessingRequest, ProcessingResponse } from './messages.js';
import { eppServiceDefinition } from './proto.js';
import { splitStreamedBody } from './reply-encoder.js';
import { ProcessStream, type StreamOptions } from './stream.js';
import { serverCredentials, type TlsMaterial } from './tls.js';
import type { ExtProcTransport } from './transports.js';

export { EXTPROC_TRANSPORTS, type ExtProcTransport } from './transports.js';

/**
 * The part of a Process call the service uses: what grpc-js's
 * ServerDuplexStream offers, and what the lean transport's LeanCall offers.
 * 'cancelled' comes once the call is over for the handler (client reset,
 * connection lost, or a status sent); emitting 'error' with a numeric
 * `code` ends the call with that gRPC status.
 */
export interface ExtProcCall {
  on(event: 'data', listener: (m: ProcessingRequest) => void): unknown;
  on(event: 'end' | 'cancelled' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (e: Error) => void): unknown;
  emit(event: 'error', e: Error): unknown;
  write(m: ProcessingResponse, written?: () => void): unknown;
  end(): unknown;
}

export interface ExtProcServiceOptions extends StreamOptions {
  /** How often the in-flight leases of open streams are renewed. */
  renewIntervalMs: number;
  /**
   * A stream that receives nothing from the gateway for this long is ended
   * (DEADLINE_EXCEEDED) and its pick released; 0 = never.
   */
  streamIdleTimeoutMs?: number;
}

export interface KeepaliveOptions {
  /** Ping each connection after this long without a frame from it (0 = never). */
  keepaliveTimeMs: number;
  /** Close the connection when a ping is not answered within this. */
  keepaliveTimeoutMs: number;
}

export const KEEPALIVE_DEFAULTS: KeepaliveOptions = { keepaliveTimeMs: 30_000, keepaliveTimeoutMs: 10_000 };
export const STREAM_IDLE_TIMEOUT_DEFAULT_MS = 600_000;

/**
 * gRPC server options that find a silent, half-open gateway connection: an
 * unanswered ping closes it, which cancels its streams and so releases
 * their picks (otherwise the Director would renew their leases forever).
 */
export function keepaliveServerOptions(k: KeepaliveOptions): Record<string, number> {
  if (k.keepaliveTimeMs <= 0) return {};
  return { 'grpc.keepalive_time_ms': k.keepaliveTimeMs, 'grpc.keepalive_timeout_ms': k.keepaliveTimeoutMs };
}

export class ExtProcService {
  private open = 0;
  private readonly streamOpts: StreamOptions;
  /** The idle timeout of every open stream (one sweep, not a timer per stream); none when 0. */
  private readonly idle: IdleSweep | undefined;

  constructor(private readonly opts: ExtProcServiceOptions) {
    this.streamOpts = opts;
    const idleMs = opts.streamIdleTimeoutMs ?? 0;
    this.idle = idleMs > 0 ? new IdleSweep(idleMs) : undefined;
  }

  /** Streams currently open. */
  get openStreams(): number {
    return this.open;
  }

  addTo(server: grpc.Server): void {
    server.addService(eppServiceDefinition(), {
      Process: (call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>) => this.process(call),
    });
  }

  /** Serves Process on the lean transport, with the same codec as on grpc-js. */
  addToLean(server: LeanGrpcServer): void {
    const method = eppServiceDefinition().Process!;
    server.addMethod<ProcessingRequest, ProcessingResponse>({
      path: method.path,
      deserialize: (b) => method.requestDeserialize(b) as ProcessingRequest,
      serialize: (m) => method.responseSerialize(m),
      // Body chunks of 4 KiB and more are written from the body's own buffer (no copy).
      split: (m, reserve) => splitStreamedBody(m, reserve, 4096),
      handler: (call) => this.process(call),
    });
  }

  /** One Process call, on either transport. */
  process(call: ExtProcCall): void {
    this.open++;
    let counted = true;
    const done = () => {
      if (counted) {
        counted = false;
        this.open--;
      }
    };
    const stream = new ProcessStream(
      {
        write: (m, written) => {
          if (written) call.write(m, written);
          else call.write(m);
        },
        end: () => {
          call.end();
          done();
        },
      },
      this.streamOpts,
    );
    const idle = this.idle?.watch(() => {
      const idleMs = this.idle!.idleMs;
      this.opts.logger.warn({ idleMs }, 'ext_proc stream idle: ending it and releasing its pick');
      // The stream's own error handler below closes it (and releases); the call ends with this status.
      call.emit(
        'error',
        Object.assign(new Error(`no message from the gateway for ${idleMs} ms`), {
          code: grpc.status.DEADLINE_EXCEEDED,
        }),
      );
    });
    const settled = () => {
      idle?.unwatch();
      done();
    };
    call.on('data', (m: ProcessingRequest) => {
      idle?.heard();
      stream.receive(m);
    });
    call.on('end', () => stream.close('end'));
    call.on('cancelled', () => {
      stream.close('cancelled');
      settled();
    });
    call.on('error', (e: Error) => {
      this.opts.logger.debug({ err: e }, 'ext_proc stream error');
      stream.close('error');
      settled();
    });
    call.on('close', settled);
  }

  /** Starts renewing the leases of open picks so a slow stream keeps its charge. */
  startRenewal(): void {
    this.opts.director.startRenewal(this.opts.renewIntervalMs);
  }

  stopRenewal(): void {
    this.opts.director.stopRenewal();
  }
}

/**
 * Stops accepting streams, lets open ones finish for up to `deadlineMs`,
 * then cuts the rest. Resolves with the number of streams that were cut.
 */
export function drainServer(
  server: Pick<grpc.Server, 'tryShutdown' | 'forceShutdown'>,
  service: ExtProcService,
  deadlineMs: number,
): Promise<number> {
  return new Promise((resolve) => {
    let finished = false;
    const timer = setTimeout(() => {
      if (finished) return;
      finished = true;
      const cut = service.openStreams;
      server.forceShutdown();
      resolve(cut);
    }, deadlineMs);
    timer.unref();
    server.tryShutdown(() => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      resolve(0);
    });
  });
}

export interface ExtProcServerOptions {
  transport: ExtProcTransport;
  /** Larger incoming gRPC messages end the stream with RESOURCE_EXHAUSTED. */
  maxReceiveMessageBytes: number;
  keepalive: KeepaliveOptions;
  tls?: TlsMaterial;
}

/** The ext_proc listener, whichever transport runs it. */
export interface ExtProcServer {
  readonly transport: ExtProcTransport;
  /** Resolves with the bound port (0 asks for any free one). */
  listen(host: string, port: number): Promise<number>;
  tryShutdown(callback: (error?: Error) => void): void;
  forceShutdown(): void;
}

/** A server for `service` on the chosen transport, not yet listening. */
export function createExtProcServer(service: ExtProcService, o: ExtProcServerOptions): ExtProcServer {
  if (o.transport === 'http2') {
    const lean = new LeanGrpcServer({
      maxReceiveMessageBytes: o.maxReceiveMessageBytes,
      keepaliveTimeMs: o.keepalive.keepaliveTimeMs,
      keepaliveTimeoutMs: o.keepalive.keepaliveTimeoutMs,
      tls: o.tls,
    });
    service.addToLean(lean);
    return {
      transport: 'http2',
      listen: (host, port) => lean.listen(port, host),
      tryShutdown: (cb) => lean.tryShutdown(cb),
      forceShutdown: () => lean.forceShutdown(),
    };
  }
  const server = new grpc.Server({
    'grpc.max_receive_message_length': o.maxReceiveMessageBytes,
    'grpc.max_send_message_length': -1,
    // channelz bookkeeping costs a getsockname() and more per stream.
    'grpc.enable_channelz': 0,
    ...keepaliveServerOptions(o.keepalive),
  });
  service.addTo(server);
  return {
    transport: 'grpc-js',
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.bindAsync(hostPort(host, port), serverCredentials(o.tls), (err, bound) =>
          err ? reject(err) : resolve(bound),
        );
      }),
    tryShutdown: (cb) => server.tryShutdown(cb),
    forceShutdown: () => server.forceShutdown(),
  };
}
