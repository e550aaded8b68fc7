// The ExternalProcessor gRPC service: one ProcessStream per Process call,
// dead connections found and their picks released (keepalive pings, a
// per-stream idle timeout), and draining on shutdown (the Director renews
// the leases of open picks and releases what a drain cut).
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from './messages.js';
import { eppServiceDefinition } from './proto.js';
import { ProcessStream, type StreamOptions } from './stream.js';

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

  constructor(private readonly opts: ExtProcServiceOptions) {
    this.streamOpts = opts;
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

  private process(call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>): void {
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
        write: (m, written) => (written ? call.write(m, written) : call.write(m)),
        end: () => {
          call.end();
          done();
        },
      },
      this.streamOpts,
    );
    const idleMs = this.opts.streamIdleTimeoutMs ?? 0;
    const idle =
      idleMs > 0
        ? setTimeout(() => {
            this.opts.logger.warn({ idleMs }, 'ext_proc stream idle: ending it and releasing its pick');
            // The stream's own error handler below closes it (and releases); the call ends with this status.
            call.emit(
              'error',
              Object.assign(new Error(`no message from the gateway for ${idleMs} ms`), {
                code: grpc.status.DEADLINE_EXCEEDED,
              }),
            );
          }, idleMs)
        : undefined;
    idle?.unref();
    const settled = () => {
      if (idle) clearTimeout(idle);
      done();
    };
    call.on('data', (m: ProcessingRequest) => {
      idle?.refresh();
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
  server: grpc.Server,
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
