// One Process stream = one HTTP request's life, read top to bottom:
//   request headers -> request body (chunks accumulated as Buffers, decoded
//   once complete) -> parse -> Director.pick -> reply with the destination
//   -> response headers/body passed straight through while usage is read
//   -> release what the pick charged, exactly once, however the stream ends.
//
// FULL_DUPLEX_STREAMED (Istio, GIE): the reply to the request headers waits
// until the body has ended; then come the header reply (destination,
// content-length, clear_route_cache, handler headers) with envoy.lb dynamic
// metadata, and the body streamed back unchanged in ≤62,000-byte chunks.
// BUFFERED: headers are answered at once with "continue"; the decision rides
// on the body reply. A request without a body is routed at header time.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Director, PickOptions, PickTicket } from '../director/director.js';
import {
  PREFILL_HEADER,
  DECODE_HEADER,
  MODEL_REWRITE_HEADER,
  OBJECTIVE_HEADER,
} from '../common/wire-headers.js';
import {
  apiTypeOfPath,
  openAIErrorBody,
  readOpenAIRequest,
  RequestError,
  type ReadRequest,
} from '../request/openai.js';
import { boundedRequestId } from '../request/request-id.js';
import { appendBodyChunk, requestBodyBuffer, type BodyBuffer } from '../request/body-buffer.js';
import type { LLMRequest, SchedulingResult } from '../scheduling/types.js';
import { SchedulingError } from '../scheduling/types.js';
import {
  headerRecord,
  headerText,
  requestKind,
  setHeader,
  type BodySendMode,
  type HeaderValueOption,
  type HttpBody,
  type HttpHeaders,
  type ProcessingRequest,
  type ProcessingResponse,
} from './messages.js';
import type { ErrorCode, ExtProcObserver } from '../observability/request-observer.js';
import { inSubset, subsetHintFrom, subsetSize, type SubsetHint } from './subset-hint.js';
import {
  CONTINUE_REQUEST_BODY,
  CONTINUE_REQUEST_HEADERS,
  CONTINUE_RESPONSE_BODY,
  CONTINUE_RESPONSE_HEADERS,
  immediateReply,
  replacedResponseBody,
  RESPONSE_HEADERS_DROP_LENGTH,
  REQUEST_TRAILERS_REPLY,
  RESPONSE_TRAILERS_REPLY,
  routedBodyReply,
  routedHeadersReply,
  streamedBodyReplies,
  type RoutingReply,
} from './replies.js';
import { UsageTracker } from './usage.js';
import {
  responseModelRestorer,
  rewrittenRequestBody,
  type ResponseModelRestorer,
} from '../flow/rewrite-body.js';
import type { RewriteChoice } from '../flow/model-rewrite.js';
import { FlowRejection, type FlowController } from '../flow/flow-controller.js';

export interface StreamOptions {
  director: Director;
  logger: Logger;
  /** Request header (and envoy.lb metadata key) naming the chosen endpoints. */
  destinationHeader: string;
  /** Dynamic metadata namespace the gateway reads (Istio: envoy.lb). */
  metadataNamespace: string;
  /** Larger request bodies are answered 413. */
  maxBodyBytes: number;
  /** Used when the gateway sends no protocol_config (older Envoy). */
  defaultRequestBodyMode: BodySendMode;
  defaultResponseBodyMode: BodySendMode;
  observer: ExtProcObserver;
  /** Ignore the gateway's subset hint (--disable-endpoint-subset-filter). */
  ignoreSubsetHint?: boolean;
  /** Priority of the request's InferenceObjective (header x-gateway-inference-objective); unknown = 0. */
  priorityOf?: (objective: string | undefined) => number;
  /** The InferenceModelRewrite rule's choice for a model, if one applies. */
  rewriteOf?: (model: string) => RewriteChoice | undefined;
  /** The flowControl section's queue (src/flow): requests with a body pass through it. */
  admission?: FlowController;
  /** `retry-after` (seconds) on a shed request's 429; default 1. */
  shedRetryAfterSeconds?: number;
  now?: () => number;
}

/** Where a stream writes its replies (a grpc ServerDuplexStream in production). */
export interface ReplySink {
  /**
   * `written`, when given, is called once the message has been serialized or
   * will never be (grpc-js: the write's callback, error or not); a sink may
   * also never call it.
   */
  write(msg: ProcessingResponse, written?: () => void): void;
  end(): void;
}

/** The untrusted headers besides the destination one: the PD roles. */
const ROLE_HEADERS: readonly string[] = [PREFILL_HEADER, DECODE_HEADER];

/** Headers a client could use to steer routing: dropped before scheduling, replaced in the reply. */
function untrustedHeaders(destinationHeader: string): string[] {
  return [destinationHeader, ...ROLE_HEADERS];
}

/** Whether `keys` (header names in any case) include the lower-case name `k`. */
function setsHeader(keys: readonly string[], k: string): boolean {
  for (const key of keys) if (key.toLowerCase() === k) return true;
  return false;
}

type Phase = 'request-headers' | 'request-body' | 'routed' | 'response' | 'done';

/** What handling a message returns: the pick's promise when it started one, else undefined. */
type Step = Promise<void> | undefined;

export class ProcessStream {
  private phase: Phase = 'request-headers';
  private requestMode: BodySendMode;
  private responseMode: BodySendMode;
  private observeOnly = false;
  private headers: Record<string, string> = {};
  private requestId = '';
  private requestIdGenerated = false;
  private body: BodyBuffer | undefined;
  private model = '';
  /** The pick's charges; the Director renews their lease until released. */
  private ticket: PickTicket | undefined;
  private released = false;
  private running = false;
  private closed = false;
  private gone = false;
  private startedAtMs = 0;
  private responseStatus = 0;
  private responseBytes = 0;
  private usage: UsageTracker | undefined;
  private streamRequested = false;
  /** Set when the model was rewritten: puts the client's name back into the response. */
  private restoreModel: ResponseModelRestorer | undefined;
  /** The gateway's subset hint, from the first request-phase message carrying one. */
  private subset: SubsetHint | undefined;
  private log: Logger;
  /** True while a message's async step (the pick) runs; later messages wait in `backlog`. */
  private waiting = false;
  private pending: Promise<void> = Promise.resolve();
  private readonly backlog: Array<ProcessingRequest | (() => void)> = [];
  /**
   * Aborted when the gateway goes away: a request queued by flow control
   * leaves the queue. Made only when flow control asks for it (an
   * AbortController costs several microseconds; most streams never need one).
   */
  private goneController: AbortController | undefined;

  constructor(
    private readonly sink: ReplySink,
    private readonly opts: StreamOptions,
  ) {
    this.requestMode = opts.defaultRequestBodyMode;
    this.responseMode = opts.defaultResponseBodyMode;
    this.log = opts.logger;
    opts.observer.streamOpened?.();
  }

  /**
   * Messages are handled strictly in arrival order, even across the async
   * pick. A message is handled at once, synchronously, unless an earlier one
   * is still waiting for its pick; then it waits in `backlog`. Only the pick
   * is asynchronous, so most messages of a request cost no promise at all (a
   * promise chain per message was ~19 us of a 2 KB request's profile).
   */
  receive(msg: ProcessingRequest): void {
    if (this.waiting) this.backlog.push(msg);
    else this.run(msg);
  }

  /** The gateway half-closed, cancelled, or the stream broke: release and stop. */
  close(reason: 'end' | 'cancelled' | 'error'): void {
    if (this.closed) return;
    // Nothing more can be written to a cancelled or broken stream.
    if (reason !== 'end') {
      this.gone = true;
      this.goneController?.abort();
    }
    const closing = () => {
      if (this.closed) return;
      this.closed = true;
      if (this.phase !== 'done' && this.ticket && reason !== 'end') {
        this.log.debug({ requestId: this.requestId, reason }, 'stream ended before the response completed');
      }
      this.releaseOnce();
      this.phase = 'done';
      this.opts.observer.streamClosed?.();
      if (reason === 'end') this.sink.end();
    };
    if (this.waiting) this.backlog.push(closing);
    else this.run(closing);
  }

  /** Resolves when every message received so far has been handled (tests, drain). */
  async settled(): Promise<void> {
    // Handling the backlog may start another pick: wait for that one too.
    while (this.waiting) await this.pending;
  }

  /** Handles one message (or the close); an async step holds back what follows until it is done. */
  private run(item: ProcessingRequest | (() => void)): void {
    let step: Promise<void> | undefined;
    try {
      if (typeof item === 'function') item();
      else step = this.handle(item);
    } catch (e) {
      this.internalError(e as Error);
      return;
    }
    if (!step) return;
    this.waiting = true;
    this.pending = step.then(
      () => this.resume(),
      (e: Error) => {
        this.internalError(e);
        this.resume();
      },
    );
  }

  private resume(): void {
    this.waiting = false;
    while (!this.waiting && this.backlog.length > 0) this.run(this.backlog.shift()!);
  }

  /** The signal aborted once the gateway is gone (already aborted if it is). */
  private goneSignal(): AbortSignal {
    if (!this.goneController) {
      this.goneController = new AbortController();
      if (this.gone) this.goneController.abort();
    }
    return this.goneController.signal;
  }

  private send(msg: ProcessingResponse, written?: () => void): void {
    if (this.closed || this.gone || this.observeOnly) {
      written?.();
      return;
    }
    this.sink.write(msg, written);
  }

  /** Handles one message; returns the pick's promise when it started one, else nothing (done). */
  private handle(msg: ProcessingRequest): Step {
    if (this.closed || this.phase === 'done') return undefined;
    if (msg.protocol_config) {
      const pc = msg.protocol_config;
      if (pc.request_body_mode) this.requestMode = pc.request_body_mode;
      if (pc.response_body_mode) this.responseMode = pc.response_body_mode;
    }
    if (msg.observability_mode) this.observeOnly = true;
    const kind = requestKind(msg);
    if (msg.metadata_context && !this.subset && !this.opts.ignoreSubsetHint && kind?.startsWith('request_')) {
      this.subset = subsetHintFrom(msg.metadata_context);
    }
    switch (kind) {
      case 'request_headers':
        return this.onRequestHeaders(msg.request_headers ?? {});
      case 'request_body':
        return this.onRequestBody(msg.request_body ?? {});
      case 'request_trailers':
        return this.onRequestTrailers();
      case 'response_headers':
        this.onResponseHeaders(msg.response_headers ?? {});
        return undefined;
      case 'response_body':
        this.onResponseBody(msg.response_body ?? {});
        return undefined;
      case 'response_trailers':
        this.send(RESPONSE_TRAILERS_REPLY);
        this.responseEnded();
        return undefined;
      default:
        this.log.warn({ kind }, 'ext_proc message without a known request field; ignored');
        return undefined;
    }
  }

  // ---- request phase ----

  private onRequestHeaders(h: HttpHeaders): Step {
    if (this.phase !== 'request-headers') {
      this.protocolError('request headers sent twice');
      return undefined;
    }
    this.startedAtMs = (this.opts.now ?? Date.now)();
    const headers = headerRecord(h.headers);
    // Never let a client choose its backend: its routing headers are not seen by plugins.
    for (const k of untrustedHeaders(this.opts.destinationHeader)) delete headers[k];
    this.headers = headers;
    const rid = headers['x-request-id'];
    if (rid) this.requestId = boundedRequestId(rid);
    else {
      this.requestId = randomUUID();
      this.requestIdGenerated = true;
      headers['x-request-id'] = this.requestId;
    }
    if (h.end_of_stream) return this.routeHeaderOnly();
    this.phase = 'request-body';
    const cl = Number(headers['content-length']);
    if (Number.isFinite(cl) && cl > this.opts.maxBodyBytes) {
      this.tooLarge(cl);
      return undefined;
    }
    // Only modes that wait for the header reply get one now.
    if (this.requestMode !== 'FULL_DUPLEX_STREAMED') this.send(CONTINUE_REQUEST_HEADERS);
    return undefined;
  }

  private onRequestBody(b: HttpBody): Step {
    if (this.phase !== 'request-body') {
      if (this.phase === 'request-headers') this.protocolError('request body before request headers');
      return undefined; // after an answer (413, error): the rest of the body is irrelevant
    }
    const chunk = b.body;
    if (chunk) {
      const refused = appendBodyChunk((this.body ??= requestBodyBuffer(this.opts.maxBodyBytes)), chunk);
      if (refused) {
        this.fail(refused.status, refused.message, refused.status === 413 ? 'PayloadTooLarge' : 'BadRequest');
        return undefined;
      }
    }
    if (b.end_of_stream) return this.routeWithBody(true);
    if (this.requestMode !== 'FULL_DUPLEX_STREAMED') this.send(CONTINUE_REQUEST_BODY);
    return undefined;
  }

  private onRequestTrailers(): Step {
    const trailersReply = () => {
      if (this.phase !== 'done') this.send(REQUEST_TRAILERS_REPLY);
    };
    // Trailers end a body that had no end_of_stream.
    if (this.phase === 'request-body') return this.routeWithBody(false).then(trailersReply);
    trailersReply();
    return undefined;
  }

  private requestPath(): string {
    const h = this.headers;
    return h[':path'] ?? h['x-original-path'] ?? h['x-forwarded-path'] ?? '/v1/completions';
  }

  private async routeHeaderOnly(): Promise<void> {
    const path = this.requestPath();
    const req: LLMRequest = {
      requestId: this.requestId,
      model: this.headers[MODEL_REWRITE_HEADER] ?? '',
      apiType: apiTypeOfPath(path),
      promptText: '',
      promptTokens: 0,
      stream: false,
      headers: this.headers,
    };
    this.received(req.model, 0);
    const result = await this.pick(req);
    if (!result) return;
    this.phase = 'routed';
    this.send(routedHeadersReply(this.routing(result, undefined)));
  }

  private async routeWithBody(eos: boolean): Promise<void> {
    let body: Buffer;
    let read: ReadRequest;
    const received = this.body ?? requestBodyBuffer(0);
    this.body = undefined;
    try {
      // Read only now, so a multi-byte character split across chunks is whole.
      body = received.finish();
      read = readOpenAIRequest(this.requestPath(), body, this.headers, this.requestId);
    } catch (e) {
      received.release();
      if (e instanceof RequestError)
        return this.fail(e.status, e.message, e.status === 413 ? 'PayloadTooLarge' : 'BadRequest', e.param);
      throw e;
    }
    // A pooled body goes back once nothing reads it: after the pick, and after
    // the last reply carrying it has been serialized. An exception on the way
    // leaves it to the garbage collector, which is always safe.
    const releaseBody = () => {
      read.detach();
      received.release();
    };
    await this.routeRead(body, read, eos, releaseBody);
  }

  private async routeRead(
    body: Buffer,
    read: ReadRequest,
    eos: boolean,
    releaseBody: () => void,
  ): Promise<void> {
    const req = read.request;
    this.streamRequested = req.stream;
    // GIE: the rewrite header names the target, then InferenceModelRewrite rules may replace it.
    const incoming = req.model;
    let target = this.headers[MODEL_REWRITE_HEADER] || incoming;
    const choice = this.opts.rewriteOf?.(target);
    if (choice) {
      this.opts.observer.modelRewritten?.(choice.rewriteName, incoming, choice.target);
      target = choice.target;
    }
    let mutated = false;
    if (target !== incoming) {
      // Only a rewrite decodes the whole body and encodes it again.
      body = rewrittenRequestBody(read.json(), target);
      req.model = target;
      this.restoreModel = responseModelRestorer(target, incoming);
      mutated = true;
    }
    const priority = this.opts.priorityOf?.(this.headers[OBJECTIVE_HEADER]) ?? 0;
    this.received(req.model, body.length, priority);
    const result = await this.pick(req, priority < 0, { priority, bytes: body.length, rewritten: mutated });
    if (!result) return releaseBody();
    this.phase = 'routed';
    if (this.requestMode === 'FULL_DUPLEX_STREAMED') {
      this.send(routedHeadersReply(this.routing(result, body.length)));
      const replies = streamedBodyReplies('request_body', body, eos);
      const last = replies.length - 1;
      for (let i = 0; i < last; i++) this.send(replies[i]!);
      this.send(replies[last]!, releaseBody);
    } else {
      // Body unchanged unless the model was rewritten: Content-Length stays as sent otherwise.
      if (mutated) this.send(routedBodyReply(this.routing(result, body.length), body));
      else this.send(routedBodyReply(this.routing(result, undefined)));
      releaseBody();
    }
  }

  /** Runs the director; answers the error itself and returns undefined on failure. */
  private async pick(
    req: LLMRequest,
    sheddable = false,
    flow?: { priority: number; bytes: number; rewritten: boolean },
  ): Promise<SchedulingResult | undefined> {
    const t0 = performance.now();
    try {
      const subset = this.subset;
      if (subset && this.log.isLevelEnabled('debug')) {
        this.log.debug(
          { requestId: req.requestId, entries: subsetSize(subset) },
          'subset hint restricts candidates',
        );
      }
      const pickOpts: PickOptions = {
        candidates: subset ? (e) => inSubset(subset, e) : undefined,
        sheddable,
      };
      const admission = flow ? this.opts.admission : undefined;
      const d = admission
        ? await admission.pick(req, pickOpts, { ...flow!, signal: this.goneSignal() })
        : await this.opts.director.pick(req, pickOpts);
      const secs = (performance.now() - t0) / 1000;
      this.opts.observer.scheduled?.(req.model, secs, d.result.primary.endpoint.id, d.result.profile, true);
      if (this.gone) {
        // The gateway went away while we were picking.
        await d.ticket.release();
        return undefined;
      }
      this.ticket = d.ticket;
      if (this.log.isLevelEnabled('debug')) {
        this.log.debug(
          {
            requestId: req.requestId,
            model: req.model,
            endpoint: d.result.primary.endpoint.id,
            fallbacks: d.result.fallbacks.map((f) => f.endpoint.id),
            promptTokens: req.promptTokens,
            scheduleUs: Math.round(d.scheduleUs),
          },
          'picked',
        );
      }
      return d.result;
    } catch (e) {
      // A shed request was never scheduled: it is no scheduler failure.
      if (!(e instanceof SchedulingError && e.code === 'SATURATED') && !(e instanceof FlowRejection))
        this.opts.observer.scheduled?.(req.model, (performance.now() - t0) / 1000, '', '', false);
      if (e instanceof FlowRejection) {
        // Queue full or shutting down (429), waited too long or client gone (503): GIE's outcomes.
        this.fail(
          e.status,
          e.message,
          e.status === 429 ? 'ResourceExhausted' : 'ServiceUnavailable',
          undefined,
          {
            'retry-after': String(this.opts.shedRetryAfterSeconds ?? 1),
          },
        );
        return undefined;
      }
      if (e instanceof SchedulingError) {
        // GIE: no candidate at all is 503; a scheduler that filtered everyone out is 429.
        if (e.code === 'NO_CANDIDATES') this.fail(503, e.message, 'ServiceUnavailable');
        else if (e.code === 'SATURATED') {
          this.opts.observer.shed?.(req.model, 'saturated');
          this.fail(429, e.message, 'ResourceExhausted', undefined, {
            'retry-after': String(this.opts.shedRetryAfterSeconds ?? 1),
          });
        } else this.fail(429, e.message, 'ResourceExhausted');
        return undefined;
      }
      throw e;
    }
  }

  private routing(result: SchedulingResult, contentLength: number | undefined): RoutingReply {
    // Built with plain loops: this runs once per request, and the spread, map,
    // Set and filter it was written with were ~10% of its allocation.
    let dest = result.primary.endpoint.id;
    for (const f of result.fallbacks) dest += `,${f.endpoint.id}`;
    const destHeader = this.opts.destinationHeader;
    const set: HeaderValueOption[] = [setHeader(destHeader, dest)];
    if (contentLength !== undefined && contentLength > 0)
      set.push(setHeader('content-length', String(contentLength)));
    if (this.requestIdGenerated) set.push(setHeader('x-request-id', this.requestId));
    const extra = Object.keys(result.headers);
    for (const k of extra) set.push(setHeader(k, result.headers[k]!));
    // The untrusted headers the reply does not set itself are removed (the destination header it always sets).
    const remove: string[] = [];
    for (const k of ROLE_HEADERS) if (k !== destHeader && !setsHeader(extra, k)) remove.push(k);
    return {
      setHeaders: set,
      removeHeaders: remove,
      metadata: { [this.opts.metadataNamespace]: { [destHeader]: dest } },
    };
  }

  // ---- response phase ----

  private onResponseHeaders(h: HttpHeaders): void {
    this.phase = 'response';
    // Two headers read: no record of them all.
    this.responseStatus = Number(headerText(h.headers, ':status') ?? 200) || 0;
    const sse =
      (headerText(h.headers, 'content-type') ?? '').includes('text/event-stream') || this.streamRequested;
    this.usage = new UsageTracker(sse);
    // A restored model name may change the body's length.
    this.send(this.restoreModel ? RESPONSE_HEADERS_DROP_LENGTH : CONTINUE_RESPONSE_HEADERS);
    if (h.end_of_stream) this.responseEnded();
  }

  private onResponseBody(b: HttpBody): void {
    const chunk = b.body ?? Buffer.alloc(0);
    // The model server answered: its prefill of this prompt is done.
    if (chunk.length > 0) this.ticket?.firstToken();
    this.responseBytes += chunk.length;
    (this.usage ??= new UsageTracker(this.streamRequested)).push(chunk);
    const eos = b.end_of_stream === true;
    const out = this.restoreModel ? this.restoreModel(chunk) : chunk;
    if (this.responseMode === 'FULL_DUPLEX_STREAMED') {
      // Passed straight back: the client sees each SSE event as it comes.
      for (const m of streamedBodyReplies('response_body', out, eos)) this.send(m);
    } else if (this.responseMode !== 'BUFFERED' || eos) {
      this.send(out === chunk ? CONTINUE_RESPONSE_BODY : replacedResponseBody(out));
    }
    if (eos) this.responseEnded();
  }

  private responseEnded(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    const usage = this.usage?.finish();
    const secs = ((this.opts.now ?? Date.now)() - this.startedAtMs) / 1000;
    if (this.responseStatus >= 400) this.opts.observer.requestError?.(this.model, 'ModelServerError');
    this.opts.observer.responseComplete?.(this.model, this.responseStatus, secs, this.responseBytes, usage);
    this.releaseOnce();
  }

  private received(model: string, size: number, priority = 0): void {
    this.model = model;
    this.running = true;
    this.opts.observer.requestReceived?.(model, size, priority);
  }

  /** Releases the pick's charges and ends the request's "running" count, each once. */
  private releaseOnce(): void {
    if (this.running) {
      this.running = false;
      this.opts.observer.requestEnded?.(this.model);
    }
    if (this.released || !this.ticket) return;
    this.released = true;
    // Never throws: the Director reports store failures itself.
    void this.ticket.release();
  }

  // ---- errors ----

  private tooLarge(bytes: number): void {
    this.fail(
      413,
      `request body of ${bytes} bytes exceeds the limit of ${this.opts.maxBodyBytes} bytes`,
      'PayloadTooLarge',
    );
  }

  /** Answers the HTTP request from here and ends the stream. */
  private fail(
    status: number,
    message: string,
    code: ErrorCode,
    param?: string,
    headers?: Readonly<Record<string, string>>,
  ): void {
    this.opts.observer.requestError?.(this.model, code);
    if (status >= 500) this.log.warn({ requestId: this.requestId, status, code }, message);
    else if (this.log.isLevelEnabled('debug'))
      this.log.debug({ requestId: this.requestId, status, code }, message);
    this.phase = 'done';
    this.send(
      immediateReply(
        status,
        openAIErrorBody(status, message, param),
        this.requestId,
        `hermes_router_${code}`,
        headers,
      ),
    );
    this.releaseOnce();
    this.closed = true;
    this.opts.observer.streamClosed?.();
    if (!this.gone) this.sink.end();
  }

  private protocolError(what: string): void {
    this.log.warn({ requestId: this.requestId }, `ext_proc protocol error: ${what}`);
    this.fail(500, `gateway protocol error: ${what}`, 'Internal');
  }

  private internalError(e: Error): void {
    if (this.closed) return;
    this.log.error({ requestId: this.requestId, err: e }, 'request failed inside the EPP');
    this.fail(500, `internal error in the endpoint picker (request id ${this.requestId})`, 'Internal');
  }
}
