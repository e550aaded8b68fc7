// A lean gRPC server transport on node:http2 for bidirectional-streaming
// methods (the EPP serves one: ext_proc's Process). node:http2 does the
// HTTP/2 framing, flow control and HPACK; this file does the rest of gRPC
// over HTTP/2 that the EPP needs:
//   - a call is a POST to /<service>/<method> with content-type
//     application/grpc[+proto]; anything else is answered 415 (as grpc-js);
//     an unknown path gets grpc-status 12 UNIMPLEMENTED;
//   - messages are length-prefixed (grpc-framing.ts); a compressed one is
//     refused (UNIMPLEMENTED / INTERNAL), one over the receive limit gets
//     RESOURCE_EXHAUSTED, as grpc-js words it;
//   - the reply is response headers, then messages, then trailers with
//     grpc-status and grpc-message (or headers only, "trailers-only", when
//     nothing was sent);
//   - grpc-timeout is honoured (DEADLINE_EXCEEDED when it passes);
//   - keepalive: each connection is pinged every keepaliveTimeMs and closed
//     when a ping goes unanswered for keepaliveTimeoutMs (grpc-js's server
//     keepalive); drain: GOAWAY on every connection, open streams finish.
// Each call is handed to the method's handler as a `LeanCall`, which speaks
// the part of grpc-js's ServerDuplexStream the ext_proc handler uses (the
// events data / end / cancelled / error / close, write with a callback,
// end, and an 'error' emitted by the handler ending the call with the
// error's code), so the handler cannot tell the transports apart.
// What grpc-js has and this does not: message compression, interceptors,
// channelz, max connection age/idle, client ping-rate enforcement.
import { EventEmitter } from 'node:events';
import * as http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import {
  encodeGrpcMessage,
  frameMessage,
  GrpcDeframer,
  GrpcStatus,
  parseGrpcTimeout,
} from './grpc-framing.js';

export interface LeanMethod<Req, Res> {
  /** `/<package>.<Service>/<Method>`. */
  path: string;
  deserialize(payload: Buffer): Req;
  /** May return a view of a reused buffer: the transport copies it before the next call. */
  serialize(message: Res): Uint8Array;
  /**
   * Optional: a large message as pieces to write without copying (head with
   * `reserve` free bytes at its start, a body that must stay unchanged until
   * the write's callback, tail); undefined to serialize it whole.
   */
  split?(
    message: Res,
    reserve: number,
  ): { head: Buffer; body: Uint8Array; tail: Buffer; total: number } | undefined;
  handler(call: LeanCall<Req, Res>): void;
}

export interface LeanServerOptions {
  /** Larger incoming messages end the call with RESOURCE_EXHAUSTED. */
  maxReceiveMessageBytes: number;
  /** Ping interval per connection (0 = no keepalive pings). */
  keepaliveTimeMs: number;
  /** A ping unanswered this long closes the connection (its streams are cancelled). */
  keepaliveTimeoutMs: number;
  /** TLS (ALPN h2) when given; plaintext HTTP/2 (prior knowledge) otherwise. */
  tls?: { cert: Buffer; key: Buffer };
}

const RESPONSE_HEADERS = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity',
};

function uncork(call: LeanCall<unknown, unknown>): void {
  call.flush();
}

/**
 * One gRPC call on one HTTP/2 stream. Events: 'data' (a decoded message),
 * 'end' (the client half-closed), 'cancelled' (once, when the call is over
 * for the handler: the client reset the stream, the connection went, or a
 * status was sent, as grpc-js's 'cancelled'), 'error' (emit it to end the
 * call with `err.code`, a gRPC status, and `err.message`), 'close' (the
 * HTTP/2 stream closed).
 */
export class LeanCall<Req, Res> extends EventEmitter {
  private headersSent = false;
  private statusSent = false;
  private cancelNotified = false;
  private corked = false;
  private deadline: NodeJS.Timeout | undefined;
  private readonly deframer: GrpcDeframer;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
    private readonly method: LeanMethod<Req, Res>,
    maxReceiveMessageBytes: number,
  ) {
    super();
    const encoding = headers['grpc-encoding'];
    this.deframer = new GrpcDeframer(
      maxReceiveMessageBytes,
      (payload) => this.onMessage(payload),
      typeof encoding === 'string' ? encoding : undefined,
    );
    // As grpc-js's ServerDuplexStream: an 'error' ends the call with that status.
    this.on('error', (e: Error & { code?: unknown }) =>
      this.sendStatus(typeof e.code === 'number' ? e.code : GrpcStatus.UNKNOWN, e.message),
    );
    stream.on('data', (chunk: Buffer) => {
      if (this.statusSent || this.cancelNotified) return;
      const err = this.deframer.push(chunk);
      if (err) this.sendStatus(err.code, err.details);
    });
    stream.on('end', () => {
      if (this.statusSent || this.cancelNotified) return;
      if (this.deframer.partial) {
        this.sendStatus(GrpcStatus.INTERNAL, 'Stream ended in the middle of a message');
        return;
      }
      this.emit('end');
    });
    stream.once('close', () => {
      if (this.deadline) clearTimeout(this.deadline);
      this.notifyCancelled();
      this.emit('close');
    });
    const timeout = headers['grpc-timeout'];
    if (typeof timeout === 'string') {
      const ms = parseGrpcTimeout(timeout);
      if (ms === undefined) {
        process.nextTick(() =>
          this.sendStatus(GrpcStatus.INTERNAL, `Invalid grpc-timeout value "${timeout}"`),
        );
      } else {
        this.deadline = setTimeout(
          () => this.sendStatus(GrpcStatus.DEADLINE_EXCEEDED, 'Deadline exceeded'),
          ms,
        );
      }
    }
  }

  /** The client's cancellation, or the status sent: the handler must stop. */
  get cancelled(): boolean {
    return this.cancelNotified;
  }

  private onMessage(payload: Buffer): void {
    let msg: Req;
    try {
      msg = this.method.deserialize(payload);
    } catch (e) {
      this.sendStatus(GrpcStatus.INTERNAL, `Error deserializing request: ${(e as Error).message}`);
      return;
    }
    this.emit('data', msg);
  }

  /**
   * Sends one message. `written` is called once it has been serialized and
   * copied (or at once when the call is over): the message's buffers are
   * free again then.
   */
  write(message: Res, written?: () => void): boolean {
    if (this.statusSent || this.cancelNotified || this.stream.destroyed) {
      written?.();
      return false;
    }
    let payload: Uint8Array | undefined;
    let parts: ReturnType<NonNullable<LeanMethod<Req, Res>['split']>>;
    try {
      parts = this.method.split?.(message, 5);
      if (!parts) payload = this.method.serialize(message);
    } catch {
      written?.();
      this.sendStatus(GrpcStatus.INTERNAL, 'Error serializing response');
      return false;
    }
    this.sendHeaders();
    // The replies of one step (a header reply and the body chunks) go out in one write.
    if (!this.corked) {
      this.corked = true;
      this.stream.cork();
      process.nextTick(uncork, this);
    }
    if (parts) {
      // The body is written as it is (no copy): `written` waits for the write.
      parts.head[0] = 0;
      parts.head.writeUInt32BE(parts.total, 1);
      this.stream.write(parts.head);
      const done = written ? () => written() : undefined;
      if (parts.tail.length === 0) return this.stream.write(parts.body, done);
      this.stream.write(parts.body);
      return this.stream.write(parts.tail, done);
    }
    const framed = frameMessage(payload!);
    written?.();
    return this.stream.write(framed);
  }

  /** Writes out what this tick's writes queued (called on the next tick). */
  flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.stream.uncork();
  }

  /** Ends the call with grpc-status OK. */
  end(): void {
    this.sendStatus(GrpcStatus.OK, 'OK');
  }

  private sendHeaders(): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.stream.respond(RESPONSE_HEADERS, { waitForTrailers: true });
  }

  /** Ends the call with this status (trailers, or trailers-only), once. */
  sendStatus(code: number, details: string): void {
    if (this.statusSent || this.cancelNotified) return;
    this.statusSent = true;
    if (this.deadline) clearTimeout(this.deadline);
    const stream = this.stream;
    if (!stream.destroyed) {
      const status = { 'grpc-status': String(code), 'grpc-message': encodeGrpcMessage(details) };
      if (!this.headersSent) {
        this.headersSent = true;
        stream.respond({ ...RESPONSE_HEADERS, ...status }, { endStream: true });
      } else {
        this.flush();
        stream.once('wantTrailers', () => stream.sendTrailers(status));
        stream.end();
      }
    }
    // grpc-js tells the handler the call is over once its status is sent.
    process.nextTick(() => this.notifyCancelled());
  }

  private notifyCancelled(): void {
    if (this.cancelNotified) return;
    this.cancelNotified = true;
    this.emit('cancelled');
  }
}

/** A gRPC server of bidirectional-streaming methods on node:http2. */
export class LeanGrpcServer {
  private readonly server: http2.Http2Server | http2.Http2SecureServer;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly methods = new Map<string, LeanMethod<never, never>>();

  constructor(private readonly opts: LeanServerOptions) {
    const h2opts: http2.ServerOptions = {
      // As grpc-js: node's per-session memory cap refuses streams under load, so it is lifted.
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
      maxSendHeaderBlockLength: Number.MAX_SAFE_INTEGER,
    };
    this.server = opts.tls
      ? http2.createSecureServer({ ...h2opts, cert: opts.tls.cert, key: opts.tls.key })
      : http2.createServer(h2opts);
    this.server.on('session', (s) => this.onSession(s));
    this.server.on('stream', (stream, headers) => this.onStream(stream, headers));
  }

  addMethod<Req, Res>(method: LeanMethod<Req, Res>): void {
    this.methods.set(method.path, method as unknown as LeanMethod<never, never>);
  }

  /** Open connections (tests). */
  get connections(): number {
    return this.sessions.size;
  }

  /** Resolves with the bound port (0 asks for any free one). */
  listen(port: number, host: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      this.server.once('error', onError);
      this.server.listen(port, host, () => {
        this.server.off('error', onError);
        resolve((this.server.address() as AddressInfo).port);
      });
    });
  }

  /**
   * Graceful: stops accepting connections, sends GOAWAY on every open one
   * (no new streams), and calls back once their open streams have finished.
   */
  tryShutdown(callback: () => void): void {
    this.server.close(() => callback());
    for (const s of this.sessions) if (!s.closed) s.close();
  }

  /** Closes every connection now; their open streams are cancelled. */
  forceShutdown(): void {
    this.server.close();
    for (const s of this.sessions) s.destroy();
  }

  private onSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    session.on('error', () => undefined);
    let timer: NodeJS.Timeout | undefined;
    const { keepaliveTimeMs, keepaliveTimeoutMs } = this.opts;
    const schedule = () => {
      timer = setTimeout(ping, keepaliveTimeMs);
      timer.unref();
    };
    const ping = () => {
      if (session.destroyed || session.closed) return;
      timer = setTimeout(() => session.destroy(), keepaliveTimeoutMs);
      timer.unref();
      let sent = false;
      try {
        sent = session.ping((err) => {
          if (timer) clearTimeout(timer);
          if (err) session.destroy();
          else schedule();
        });
      } catch {
        sent = false;
      }
      if (!sent) session.destroy();
    };
    if (keepaliveTimeMs > 0) schedule();
    session.once('close', () => {
      if (timer) clearTimeout(timer);
      this.sessions.delete(session);
    });
  }

  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    // Errors end in 'close', which cancels the call; nothing to send on a broken stream.
    stream.on('error', () => undefined);
    const contentType = headers['content-type'];
    if (typeof contentType !== 'string' || !contentType.startsWith('application/grpc')) {
      stream.respond({ ':status': 415 }, { endStream: true });
      return;
    }
    const path = headers[':path'] ?? '';
    const method = this.methods.get(path);
    if (!method) {
      stream.respond(
        {
          ...RESPONSE_HEADERS,
          'grpc-status': String(GrpcStatus.UNIMPLEMENTED),
          'grpc-message': encodeGrpcMessage(`The server does not implement the method ${path}`),
        },
        { endStream: true },
      );
      // The request's own DATA frames are not read.
      stream.resume();
      return;
    }
    method.handler(new LeanCall(stream, headers, method, this.opts.maxReceiveMessageBytes));
  }
}
