// The ExternalProcessor gRPC service: one ProcessStream per Process call,
// and draining on shutdown (the Director renews the leases of open picks).
import * as grpc from '@grpc/grpc-js';
import type { ProcessingRequest, ProcessingResponse } from './messages.js';
import { extProcServiceDefinition } from './proto.js';
import { ProcessStream, type StreamOptions } from './stream.js';

export interface ExtProcServiceOptions extends StreamOptions {
  /** How often the in-flight leases of open streams are renewed. */
  renewIntervalMs: number;
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
    server.addService(extProcServiceDefinition(), {
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
        write: (m) => call.write(m),
        end: () => {
          call.end();
          done();
        },
      },
      this.streamOpts,
    );
    call.on('data', (m: ProcessingRequest) => stream.receive(m));
    call.on('end', () => stream.close('end'));
    call.on('cancelled', () => {
      stream.close('cancelled');
      done();
    });
    call.on('error', (e: Error) => {
      this.opts.logger.debug({ err: e }, 'ext_proc stream error');
      stream.close('error');
      done();
    });
    call.on('close', done);
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
