// What the ext_proc handler reports about each request; EppMetrics
// (metrics.ts) turns it into Prometheus metrics. The contract lives here, with
// its consumer, so the request path depends on observability and not the
// reverse. Every hook is optional and must not throw.

/** Token usage of one answer, as the model server reported it. */
export interface Usage {
  promptTokens?: number;
  completionTokens?: number;
  totalTokens?: number;
  cachedTokens?: number;
}

/** GIE error codes, used as the `error_code` label. */
export type ErrorCode =
  | 'BadRequest'
  | 'PayloadTooLarge'
  | 'ResourceExhausted'
  | 'ServiceUnavailable'
  | 'Internal'
  | 'ModelServerError';

export interface ExtProcObserver {
  streamOpened?(): void;
  streamClosed?(): void;
  /** The request body was parsed (or a header-only request arrived). */
  requestReceived?(model: string, sizeBytes: number, priority?: number): void;
  /** An InferenceModelRewrite rule sent the request to `target` (GIE's model_rewrite_decisions). */
  modelRewritten?(rewriteName: string, model: string, target: string): void;
  /** Answered 429 by admission, without scheduling (GIE legacy path: saturated and sheddable). */
  shed?(model: string, reason: 'saturated'): void;
  requestError?(model: string, code: ErrorCode): void;
  /** Once per received request, however it ended (running-requests gauge). */
  requestEnded?(model: string): void;
  /** Director.pick took `seconds` (state read + indexer + schedule + commit). */
  scheduled?(model: string, seconds: number, endpointId: string, profile: string, ok: boolean): void;
  /** The response ended normally. */
  responseComplete?(
    model: string,
    status: number,
    seconds: number,
    responseBytes: number,
    usage: Usage | undefined,
  ): void;
}
