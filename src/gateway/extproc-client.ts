// An ext_proc client that behaves like Envoy's ext_proc HTTP filter, for the
// dev gateway (functions/gateway-dev), tests and benchmarks.
//
//   const client = new ExtProcClient({ target: '127.0.0.1:9002' });
//   const ex = client.open();
//   const verdict = await ex.sendRequest({ headers: [[':path', '/v1/completions'], ...], body });
//   if (verdict.kind === 'immediate') -> answer the client with verdict.status / verdict.body
//   else -> forward verdict.headers + verdict.body to destinationOf(verdict)
//   const respHeaders = await ex.sendResponseHeaders(upstreamHeaders);
//   for await (const chunk of ex.streamResponseBody(upstreamChunks)) -> write chunk to the client
//   ex.end(); await ex.done;
//
// Message order follows Envoy for each body mode:
// - request FULL_DUPLEX_STREAMED: headers and every body chunk are sent at
//   once; the server answers the headers (usually after the last chunk),
//   then streams the (possibly rewritten) body back as streamed_response.
// - request BUFFERED: headers, wait for their reply, then the whole body in
//   one message with end_of_stream, wait for its reply.
// - response STREAMED: headers/reply, then each chunk/reply; FULL_DUPLEX_STREAMED:
//   chunks sent as they come while the server streams bodies back. Given an
//   array, the last chunk carries end_of_stream; given an (async) iterable,
//   the end is an empty chunk with end_of_stream, as a streaming gateway
//   cannot know which chunk is the last. BUFFERED: whole body once; NONE:
//   body not sent.
// Header mutations are applied as Envoy does: remove_headers, then set_headers.
import * as grpc from '@grpc/grpc-js';
import { DESTINATION_HEADER } from '../common/wire-headers.js';
import { extProcClientConstructor } from '../extproc/proto.js';
import {
  fromStruct,
  headerValueText,
  statusCodeNumber,
  toHeaderMap,
  toStruct,
  type BodySendMode,
  type CommonResponse,
  type HeaderMutation,
  type ProcessingRequest,
  type ProcessingResponse,
} from '../extproc/messages.js';

export type RequestBodyMode = 'BUFFERED' | 'FULL_DUPLEX_STREAMED';
export type ResponseBodyMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'FULL_DUPLEX_STREAMED';
export type HeaderList = Array<[string, string]>;

export interface ExtProcClientOptions {
  /** `host:port` of the ext_proc server. */
  target: string;
  /**
   * TLS to the server. `true` accepts any certificate, as gateways do with
   * an EPP's self-signed one; `{ ca }` verifies against that CA.
   */
  tls?: boolean | { ca: Buffer };
  requestBodyMode?: RequestBodyMode;
  responseBodyMode?: ResponseBodyMode;
  /** Per-exchange deadline (Envoy's message_timeout is per message; this bounds the whole stream). */
  deadlineMs?: number;
}

export interface SendRequestInput {
  headers: HeaderList | Record<string, string>;
  /** The request body: one buffer or the chunks as they would arrive. Absent: header-only request. */
  body?: Buffer | Buffer[];
  trailers?: HeaderList;
  /** metadata_context.filter_metadata (namespace -> plain object). */
  metadata?: Record<string, Record<string, unknown>>;
}

export interface ContinueVerdict {
  kind: 'continue';
  /** Request headers after the server's mutations. */
  headers: HeaderList;
  /** The body to forward upstream. */
  body: Buffer;
  /** dynamic_metadata of all replies merged (namespace -> object). */
  dynamicMetadata: Record<string, Record<string, unknown>>;
  clearRouteCache: boolean;
  /** Every reply received in this phase, in order. */
  replies: ProcessingResponse[];
}

export interface ImmediateVerdict {
  kind: 'immediate';
  status: number;
  body: Buffer;
  headers: HeaderList;
  details: string;
  replies: ProcessingResponse[];
}

export type RequestVerdict = ContinueVerdict | ImmediateVerdict;

/** The server answered the response phase with an ImmediateResponse. */
export class ImmediateResponseError extends Error {
  constructor(readonly verdict: ImmediateVerdict) {
    super(`ext_proc server answered ${verdict.status}`);
    this.name = 'ImmediateResponseError';
  }
}

/** A protocol violation by the server (unexpected message, stream closed early). */
export class ExtProcProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExtProcProtocolError';
  }
}

/** Value of a header in a list (case-insensitive, first match). */
export function headerOf(headers: HeaderList, name: string): string | undefined {
  const n = name.toLowerCase();
  for (const [k, v] of headers) if (k.toLowerCase() === n) return v;
  return undefined;
}

/**
 * The endpoints chosen by the EPP, primary first: from dynamic metadata
 * `envoy.lb` (as Istio reads it), else from the destination header.
 */
export function destinationOf(v: ContinueVerdict, key = DESTINATION_HEADER): string[] {
  const fromMeta = v.dynamicMetadata['envoy.lb']?.[key];
  const raw = typeof fromMeta === 'string' ? fromMeta : headerOf(v.headers, key);
  if (!raw) return [];
  return raw
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function applyMutation(headers: HeaderList, m: HeaderMutation | undefined): HeaderList {
  if (!m) return headers;
  let out = headers;
  if (m.remove_headers?.length) {
    const drop = new Set(m.remove_headers.map((h) => h.toLowerCase()));
    out = out.filter(([k]) => !drop.has(k.toLowerCase()));
  }
  for (const opt of m.set_headers ?? []) {
    const key = opt.header.key.toLowerCase();
    const value = headerValueText(opt.header);
    const action = opt.append_action ?? 'APPEND_IF_EXISTS_OR_ADD';
    const exists = out.some(([k]) => k.toLowerCase() === key);
    if (action === 'ADD_IF_ABSENT' && exists) continue;
    if (action === 'OVERWRITE_IF_EXISTS' && !exists) continue;
    if (action === 'APPEND_IF_EXISTS_OR_ADD') {
      out = [...out, [key, value]];
    } else {
      out = [...out.filter(([k]) => k.toLowerCase() !== key), [key, value]];
    }
  }
  return out;
}

function mergeMetadata(into: Record<string, Record<string, unknown>>, r: ProcessingResponse): void {
  if (!r.dynamic_metadata) return;
  for (const [ns, v] of Object.entries(fromStruct(r.dynamic_metadata))) {
    into[ns] = {
      ...(into[ns] ?? {}),
      ...(typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {}),
    };
  }
}

function immediateVerdict(
  r: ProcessingResponse,
  headers: HeaderList,
  replies: ProcessingResponse[],
): ImmediateVerdict {
  const ir = r.immediate_response ?? {};
  return {
    kind: 'immediate',
    status: statusCodeNumber(ir.status?.code),
    body: ir.body ?? Buffer.alloc(0),
    headers: applyMutation([], ir.headers),
    details: ir.details ?? '',
    replies,
  };
}

/** Async queue of the messages the server sends. */
class Inbox {
  private items: ProcessingResponse[] = [];
  private waiters: Array<{
    resolve: (r: ProcessingResponse | undefined) => void;
    reject: (e: Error) => void;
  }> = [];
  private ended = false;
  private error: Error | undefined;

  push(r: ProcessingResponse): void {
    const w = this.waiters.shift();
    if (w) w.resolve(r);
    else this.items.push(r);
  }

  end(err?: Error): void {
    if (this.ended) return;
    this.ended = true;
    this.error = err;
    for (const w of this.waiters.splice(0)) {
      if (err) w.reject(err);
      else w.resolve(undefined);
    }
  }

  /** The next message; undefined when the server closed the stream cleanly. */
  next(): Promise<ProcessingResponse | undefined> {
    const item = this.items.shift();
    if (item) return Promise.resolve(item);
    if (this.ended) return this.error ? Promise.reject(this.error) : Promise.resolve(undefined);
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }
}

/** One Process stream = one HTTP exchange. */
export class ExtProcExchange {
  /** Resolves when the server ends the stream (rejects on a gRPC error other than our own cancel). */
  readonly done: Promise<void>;
  private readonly inbox = new Inbox();
  private first = true;
  private cancelled = false;

  constructor(
    private readonly call: grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>,
    private readonly requestMode: RequestBodyMode,
    private readonly responseMode: ResponseBodyMode,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      call.on('data', (r: ProcessingResponse) => this.inbox.push(r));
      call.on('end', () => {
        this.inbox.end();
        resolve();
      });
      call.on('error', (e: grpc.ServiceError) => {
        if (this.cancelled && e.code === grpc.status.CANCELLED) {
          this.inbox.end(new ExtProcProtocolError('exchange cancelled'));
          resolve();
          return;
        }
        this.inbox.end(e);
        reject(e);
      });
    });
    // Callers that never await `done` must not see an unhandled rejection.
    this.done.catch(() => undefined);
  }

  private write(msg: ProcessingRequest, metadata?: SendRequestInput['metadata']): void {
    if (this.first) {
      this.first = false;
      // Envoy sends the protocol configuration on the first message only.
      msg.protocol_config = {
        request_body_mode: this.requestMode as BodySendMode,
        response_body_mode: this.responseMode as BodySendMode,
      };
    }
    if (metadata) {
      const fm: Record<string, ReturnType<typeof toStruct>> = {};
      for (const [ns, obj] of Object.entries(metadata)) fm[ns] = toStruct(obj);
      msg.metadata_context = { filter_metadata: fm };
    }
    this.call.write(msg);
  }

  private async expect(what: string): Promise<ProcessingResponse> {
    const r = await this.inbox.next();
    if (!r) throw new ExtProcProtocolError(`stream ended while waiting for ${what}`);
    return r;
  }

  /** The next reply, which must be `kind` or an immediate response (returned for the caller to answer). */
  private async replyOf(kind: ProcessingResponse['response'], what: string): Promise<ProcessingResponse> {
    const r = await this.expect(what);
    if (r.response !== 'immediate_response' && r.response !== kind)
      throw new ExtProcProtocolError(`expected ${kind} reply, got ${r.response}`);
    return r;
  }

  /** Runs the request phase and returns what the gateway should do. */
  async sendRequest(input: SendRequestInput): Promise<RequestVerdict> {
    let headers: HeaderList = Array.isArray(input.headers)
      ? input.headers.map(([k, v]) => [k, v] as [string, string])
      : Object.entries(input.headers);
    const chunks = input.body === undefined ? [] : Array.isArray(input.body) ? input.body : [input.body];
    const hasBody = input.body !== undefined;
    const hasTrailers = (input.trailers?.length ?? 0) > 0;
    const replies: ProcessingResponse[] = [];
    const meta: Record<string, Record<string, unknown>> = {};
    let clearRouteCache = false;
    let body: Buffer = Buffer.concat(chunks);

    const take = (r: ProcessingResponse, c: CommonResponse | undefined) => {
      replies.push(r);
      mergeMetadata(meta, r);
      if (c?.clear_route_cache) clearRouteCache = true;
      headers = applyMutation(headers, c?.header_mutation);
    };

    this.write(
      { request_headers: { headers: toHeaderMap(headers), end_of_stream: !hasBody && !hasTrailers } },
      input.metadata,
    );

    if (this.requestMode === 'FULL_DUPLEX_STREAMED') {
      const sendChunks = chunks.length > 0 ? chunks : hasBody ? [Buffer.alloc(0)] : [];
      sendChunks.forEach((c, i) => {
        this.write({ request_body: { body: c, end_of_stream: i === sendChunks.length - 1 && !hasTrailers } });
      });
      if (hasTrailers) this.write({ request_trailers: { trailers: toHeaderMap(input.trailers!) } });
      const hr = await this.replyOf('request_headers', 'the request headers reply');
      if (hr.response === 'immediate_response') return immediateVerdict(hr, headers, [...replies, hr]);
      take(hr, hr.request_headers?.response);
      if (hasBody) {
        // The server streams the body back; it ends with end_of_stream (or, with trailers, before them).
        const parts: Buffer[] = [];
        for (;;) {
          const br = await this.expect('the request body reply');
          if (br.response === 'immediate_response') return immediateVerdict(br, headers, [...replies, br]);
          if (br.response === 'request_trailers') {
            replies.push(br);
            break;
          }
          if (br.response !== 'request_body')
            throw new ExtProcProtocolError(`expected request_body reply, got ${br.response}`);
          const c = br.request_body?.response;
          take(br, c);
          const m = c?.body_mutation;
          if (m?.streamed_response) {
            parts.push(m.streamed_response.body ?? Buffer.alloc(0));
            if (m.streamed_response.end_of_stream) break;
          } else {
            throw new ExtProcProtocolError('FULL_DUPLEX_STREAMED body reply without streamed_response');
          }
        }
        body = Buffer.concat(parts);
      }
      if (hasTrailers && replies[replies.length - 1]?.response !== 'request_trailers') {
        const tr = await this.expect('the request trailers reply');
        replies.push(tr);
      }
    } else {
      const hr = await this.replyOf('request_headers', 'the request headers reply');
      if (hr.response === 'immediate_response') return immediateVerdict(hr, headers, [...replies, hr]);
      take(hr, hr.request_headers?.response);
      if (hasBody) {
        this.write({ request_body: { body, end_of_stream: !hasTrailers } });
        const br = await this.replyOf('request_body', 'the request body reply');
        if (br.response === 'immediate_response') return immediateVerdict(br, headers, [...replies, br]);
        const c = br.request_body?.response;
        take(br, c);
        const m = c?.body_mutation;
        if (m?.body !== undefined && m.mutation === 'body') body = m.body;
        else if (m?.clear_body) body = Buffer.alloc(0);
      }
      if (hasTrailers) {
        this.write({ request_trailers: { trailers: toHeaderMap(input.trailers!) } });
        replies.push(await this.expect('the request trailers reply'));
      }
    }
    return { kind: 'continue', headers, body, dynamicMetadata: meta, clearRouteCache, replies };
  }

  /** Sends the upstream's response headers; returns them after the server's mutations. */
  async sendResponseHeaders(
    input: HeaderList | Record<string, string>,
    endOfStream = false,
    metadata?: SendRequestInput['metadata'],
  ): Promise<HeaderList> {
    const headers: HeaderList = Array.isArray(input)
      ? input.map(([k, v]) => [k, v] as [string, string])
      : Object.entries(input);
    this.write({ response_headers: { headers: toHeaderMap(headers), end_of_stream: endOfStream } }, metadata);
    const r = await this.expect('the response headers reply');
    if (r.response === 'immediate_response')
      throw new ImmediateResponseError(immediateVerdict(r, headers, [r]));
    if (r.response !== 'response_headers')
      throw new ExtProcProtocolError(`expected response_headers reply, got ${r.response}`);
    return applyMutation(headers, r.response_headers?.response?.header_mutation);
  }

  /**
   * Passes the upstream's response body through the server; yields the bytes
   * to send to the client, in order. Ends when the body has ended.
   */
  async *streamResponseBody(chunks: AsyncIterable<Buffer> | Iterable<Buffer>): AsyncGenerator<Buffer> {
    const mode = this.responseMode;
    if (mode === 'NONE') {
      for await (const c of chunks) yield c;
      return;
    }
    if (mode === 'BUFFERED') {
      const all: Buffer[] = [];
      for await (const c of chunks) all.push(c);
      const body = Buffer.concat(all);
      this.write({ response_body: { body, end_of_stream: true } });
      yield this.bodyReply(await this.expect('the response body reply'), body);
      return;
    }
    if (mode === 'STREAMED') {
      // Envoy sends each chunk as it arrives and waits for its reply; the end
      // of the upstream body is an empty chunk with end_of_stream.
      const known = Array.isArray(chunks) && chunks.length > 0 ? (chunks as Buffer[]) : undefined;
      let i = 0;
      for await (const c of chunks) {
        const eos = known !== undefined && ++i === known.length;
        this.write({ response_body: { body: c, end_of_stream: eos } });
        yield this.bodyReply(await this.expect('a response body reply'), c);
      }
      if (known) return;
      this.write({ response_body: { body: Buffer.alloc(0), end_of_stream: true } });
      const last = this.bodyReply(await this.expect('the last response body reply'), Buffer.alloc(0));
      if (last.length > 0) yield last;
      return;
    }
    // FULL_DUPLEX_STREAMED: chunks go out as they come, without waiting; the
    // server streams bodies back until one carries end_of_stream.
    let writeError: unknown;
    // Set when the reply side failed (the EPP cut or ended the stream): the
    // writer stops feeding chunks and nobody waits for the upstream to finish.
    let readerFailed = false;
    const writer = (async () => {
      try {
        // A whole array is known: its last chunk carries end_of_stream, as when
        // Envoy has the upstream's final DATA frame in hand.
        if (Array.isArray(chunks) && chunks.length > 0) {
          const list = chunks as Buffer[];
          list.forEach((c, i) =>
            this.write({ response_body: { body: c, end_of_stream: i === list.length - 1 } }),
          );
          return;
        }
        for await (const c of chunks) {
          if (readerFailed) return;
          this.write({ response_body: { body: c, end_of_stream: false } });
        }
        if (!readerFailed) this.write({ response_body: { body: Buffer.alloc(0), end_of_stream: true } });
      } catch (e) {
        writeError = e;
        this.cancel();
      }
    })();
    try {
      for (;;) {
        let r: ProcessingResponse;
        try {
          r = await this.expect('a response body reply');
        } catch (e) {
          if (writeError) throw writeError;
          throw e;
        }
        if (r.response === 'immediate_response')
          throw new ImmediateResponseError(immediateVerdict(r, [], [r]));
        if (r.response === 'response_trailers') continue;
        if (r.response !== 'response_body')
          throw new ExtProcProtocolError(`expected response_body reply, got ${r.response}`);
        const s = r.response_body?.response?.body_mutation?.streamed_response;
        if (!s)
          throw new ExtProcProtocolError(
            'FULL_DUPLEX_STREAMED response body reply without streamed_response',
          );
        if (s.body && s.body.length > 0) yield s.body;
        if (s.end_of_stream) break;
      }
    } catch (e) {
      readerFailed = true;
      throw e;
    } finally {
      // On failure the error reaches the caller now, not when the upstream ends.
      if (!readerFailed) await writer;
    }
  }

  private bodyReply(r: ProcessingResponse, original: Buffer): Buffer {
    if (r.response === 'immediate_response') throw new ImmediateResponseError(immediateVerdict(r, [], [r]));
    if (r.response !== 'response_body')
      throw new ExtProcProtocolError(`expected response_body reply, got ${r.response}`);
    const m = r.response_body?.response?.body_mutation;
    if (m?.mutation === 'body' && m.body) return m.body;
    if (m?.clear_body) return Buffer.alloc(0);
    return original;
  }

  /** Sends response trailers (gRPC upstreams) and waits for the reply. */
  async sendResponseTrailers(trailers: HeaderList): Promise<void> {
    this.write({ response_trailers: { trailers: toHeaderMap(trailers) } });
    await this.expect('the response trailers reply');
  }

  /** Half-closes: the exchange is over from the gateway's side. */
  end(): void {
    this.call.end();
  }

  /** Aborts the stream, as Envoy does when the client goes away. */
  cancel(): void {
    this.cancelled = true;
    this.call.cancel();
  }
}

export class ExtProcClient {
  private readonly client: grpc.Client;
  private readonly requestMode: RequestBodyMode;
  private readonly responseMode: ResponseBodyMode;
  private readonly deadlineMs: number | undefined;

  constructor(opts: ExtProcClientOptions) {
    const Ctor = extProcClientConstructor();
    let creds: grpc.ChannelCredentials;
    if (!opts.tls) creds = grpc.credentials.createInsecure();
    else if (opts.tls === true)
      creds = grpc.credentials.createSsl(null, null, null, { rejectUnauthorized: false });
    else
      creds = grpc.credentials.createSsl(opts.tls.ca, null, null, { checkServerIdentity: () => undefined });
    this.client = new Ctor(opts.target, creds, {
      // Large request bodies arrive as one message in BUFFERED mode.
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      'grpc.max_send_message_length': 64 * 1024 * 1024,
      'grpc.enable_channelz': 0,
      // No retry buffer. grpc-js completes a write at once while the message
      // fits its retry buffer (1 MB a call), so stream backpressure never
      // starts; once over, it commits and re-slices the whole backlog on
      // every completed write: quadratic. 100k 1-byte body chunks took 19 s
      // of client CPU (50k: 0.5 s). ext_proc streams are not retried anyway.
      'grpc.enable_retries': 0,
      'grpc.per_rpc_retry_buffer_size': 0,
    });
    this.requestMode = opts.requestBodyMode ?? 'FULL_DUPLEX_STREAMED';
    this.responseMode = opts.responseBodyMode ?? 'FULL_DUPLEX_STREAMED';
    this.deadlineMs = opts.deadlineMs;
  }

  /** Opens one Process stream (one HTTP exchange). */
  open(
    opts: { requestBodyMode?: RequestBodyMode; responseBodyMode?: ResponseBodyMode } = {},
  ): ExtProcExchange {
    const callOpts: grpc.CallOptions = {};
    if (this.deadlineMs !== undefined) callOpts.deadline = Date.now() + this.deadlineMs;
    const process = (
      this.client as unknown as {
        Process(
          md: grpc.Metadata,
          o: grpc.CallOptions,
        ): grpc.ClientDuplexStream<ProcessingRequest, ProcessingResponse>;
      }
    ).Process.bind(this.client);
    const call = process(new grpc.Metadata(), callOpts);
    return new ExtProcExchange(
      call,
      opts.requestBodyMode ?? this.requestMode,
      opts.responseBodyMode ?? this.responseMode,
    );
  }

  /** Resolves once the channel is connected (or rejects after timeoutMs). */
  waitForReady(timeoutMs = 5_000): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve()));
    });
  }

  close(): void {
    this.client.close();
  }
}
