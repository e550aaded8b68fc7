// The vocabulary of one scheduling cycle. Everything here is plain data:
// plugins read it and return decisions, they never reach the network.

/** A model-server endpoint as discovery reports it. `id` is `ip:port`. */
export interface Endpoint {
  id: string;
  /** Pod name (Kubernetes) or the endpoints-file name. */
  name: string;
  address: string;
  port: number;
  labels: Readonly<Record<string, string>>;
  /** Where /metrics is scraped; defaults to the serving port and `/metrics`. */
  metricsPort?: number;
  metricsPath?: string;
  /** ZMQ port of the model server's KV event publisher (cache-indexer). */
  kvEventsPort?: number;
  /** ZMQ ROUTER port that replays buffered KV event batches after a gap (cache-indexer). */
  kvEventsReplayPort?: number;
}

/** Model-server signals as last scraped. Absent fields are unknown. */
export interface EndpointSignals {
  waitingQueueSize?: number;
  runningRequests?: number;
  /** KV-cache occupancy 0..1 ("XPU cache usage" in the product docs). */
  kvCacheUsage?: number;
  /** LoRA adapters (vllm:lora_requests_info), when the server reports them. */
  lora?: LoraSignals;
  /** Epoch ms of the scrape that produced these values. */
  updatedAtMs: number;
}

/** vLLM's vllm:lora_requests_info: adapters with running / waiting requests, and how many fit at once. */
export interface LoraSignals {
  running: string[];
  waiting: string[];
  maxLora: number;
}

/**
 * What a plugin sees of one endpoint. Stale or never-scraped signals are
 * `undefined`: unknown, never zero load.
 */
export interface EndpointView {
  endpoint: Endpoint;
  waitingQueueSize: number | undefined;
  runningRequests: number | undefined;
  kvCacheUsage: number | undefined;
  /** Requests this router charged to the endpoint and has not released. */
  inFlight: number;
  /**
   * Prompt tokens this router (all replicas) sent to the endpoint that it is
   * expected to prefill and has not yet produced a first token for: queued
   * prefill work, fresher than the scraped queue.
   */
  pendingPrefillTokens: number;
  /** Age of the signals in ms; undefined when never scraped. */
  signalsAgeMs: number | undefined;
  /** LoRA adapters from fresh signals (undefined when unknown or stale). */
  lora?: LoraSignals;
}

export type ApiType = 'chat' | 'completions';

export interface ChatMessage {
  role: string;
  /** Text content, with array parts already joined. */
  content: string;
}

/** Bytes of a prompt with the 32-bit word view hashing reads (src/request/prompt-bytes.ts). */
export interface PromptBytes {
  readonly bytes: Uint8Array;
  /**
   * The same memory as little-endian uint32 words: ceil(bytes.length / 4)
   * of them, the last one's missing bytes zero (the simple tokenizer's ids).
   */
  readonly words: Uint32Array;
}

/**
 * A prompt text as UTF-8, known by its length and rendered on demand: prefix
 * hashing reads only the head it hashes, so a long prompt is neither
 * decoded into a string nor copied whole.
 */
export interface PromptUtf8 {
  /** The prompt's length in UTF-8 bytes. */
  readonly length: number;
  /** Its first min(maxBytes, length) bytes. */
  head(maxBytes: number): PromptBytes;
  /**
   * The same bytes for a reader done with them before it returns (hashing):
   * possibly in a scratch buffer that the next call overwrites, so a long
   * prompt is hashed without a fresh buffer per request. Keep nothing of it.
   */
  transientHead?(maxBytes: number): PromptBytes;
}

/**
 * An OpenAI-style request, parsed once. On the ext_proc path it is a class
 * instance whose promptText and messages are decoded lazily
 * (src/request/openai-scan.ts): set its fields rather than copying it with
 * an object spread, which would drop those two.
 */
export interface LLMRequest {
  requestId: string;
  model: string;
  apiType: ApiType;
  /**
   * The text the prompt is made of, as a model server would see it before
   * tokenisation (chat: the messages rendered role by role; completions:
   * the prompt). Used for length estimates and prefix hashing.
   */
  promptText: string;
  /**
   * The same text as UTF-8, when the body reader has it without having made
   * the string (src/request/openai-scan.ts): what prefix hashing reads.
   */
  promptUtf8?: PromptUtf8;
  messages?: ChatMessage[];
  /**
   * The chat messages as the JSON array text (UTF-8) the client sent, when
   * the body reader has those bytes: forwarded as they are (the /match_sort
   * request splices them in) instead of serialising `messages` again. Any
   * JSON array of {role, content} the cache-indexer reads as `messages`
   * gives the same prompt (content parts are joined there too).
   */
  messagesJson?: () => Uint8Array;
  /** Completions with a token-array prompt. */
  tokenIds?: number[];
  /** Estimated prompt length in tokens. */
  promptTokens: number;
  stream: boolean;
  /** Lower-cased request headers. */
  headers: Readonly<Record<string, string>>;
}

/** Decayed PD bucket load of one pod, as stored. */
export interface BucketLoadRecord {
  short: number;
  long: number;
  /** Pool event counter at which short/long were last written. */
  atEvent: number;
}

/**
 * Chained prompt block keys in prompt order: 53-bit integers (a Float64Array
 * from src/request/prefix-hash.ts; plain arrays in tests).
 */
export type BlockKeys = ArrayLike<number>;

/** Cache-indexer answer for one request: hit rate 0..1 per endpoint id. */
export type HitRates = ReadonlyMap<string, number>;

/**
 * Data fetched before the cycle runs (state store + remote services). The
 * scheduler only reads it; fetching happens at the edges, concurrently and
 * within a time budget.
 */
export interface CycleData {
  nowMs: number;
  /** PD bucket loads per pod id plus the pool's event counter. */
  bucketLoads: ReadonlyMap<string, BucketLoadRecord>;
  poolEvent: number;
  /**
   * Cache-indexer hit rates; `undefined` when the indexer failed, timed out
   * or is circuit-broken (hit-rate terms then drop out of the comparison).
   */
  hitRates: HitRates | undefined;
  /** Approximate prefix index: matched leading blocks per endpoint id. */
  prefixMatches: ReadonlyMap<string, number> | undefined;
  /** Block keys of this request's prompt (approximate prefix scorer; src/request/prefix-hash.ts). */
  prefixHashes: BlockKeys | undefined;
  /** Tokens per block of prefixHashes/prefixMatches (when they are present). */
  prefixBlockTokens?: number;
}

/** A PD group: pods sharing a group id, with their roles. */
export interface PdGroup {
  id: string;
  leader: EndpointView;
  prefill: EndpointView[];
  decode: EndpointView[];
}

/**
 * What filters, scorers and pickers work on: a single endpoint
 * (aggregated serving) or a PD group (disaggregated serving).
 */
export type Candidate =
  { kind: 'endpoint'; id: string; endpoint: EndpointView } | { kind: 'group'; id: string; group: PdGroup };

/** The pods a PD scorer chose inside a group. */
export interface PdChoice {
  prefill: EndpointView;
  decode: EndpointView;
}

export interface CycleContext {
  request: LLMRequest;
  data: CycleData;
  /** Random source in [0,1); injectable so tests are deterministic. */
  random: () => number;
}

/** A scored candidate handed to a picker (higher total is better). */
export interface ScoredCandidate {
  candidate: Candidate;
  score: number;
  /** PD pods chosen by the highest-weight PD scorer, if any. */
  pdChoice?: PdChoice;
}

export interface PickResult {
  /** Ordered: first is the primary target, the rest are fallbacks. */
  targets: ScoredCandidate[];
}

/** A bucket-load charge: the pick's share of a pod's decayed load. */
export interface BucketCharge {
  endpointId: string;
  bucket: 'short' | 'long';
  amount: number;
}

/** What a pick charges to shared state, released when the response ends. */
export interface PickCharges {
  inFlight: string[];
  bucket?: { decayFactor: number; items: BucketCharge[] };
  /** Approximate prefix index: remember these block keys on this endpoint. */
  prefixRecord?: { endpointId: string; hashes: BlockKeys };
  /**
   * Prompt tokens the chosen (prefill) endpoint must prefill, i.e. not
   * expected cached there; released at the response's first token.
   */
  prefillTokens?: ReadonlyArray<PrefillTokenCharge>;
}

export interface PrefillTokenCharge {
  endpointId: string;
  tokens: number;
}

export interface PdSelection {
  groupId: string;
  leader: EndpointView;
  prefill: EndpointView;
  decode: EndpointView;
}

export interface SchedulingResult {
  profile: string;
  /** Destination: the endpoint (aggregated) or the group leader (PD). */
  primary: EndpointView;
  fallbacks: EndpointView[];
  pd?: PdSelection;
  /** Request headers to set (PD pod addresses, ...). */
  headers: Record<string, string>;
  charges: PickCharges;
  /** Total score of the primary target, for logs and decisions. */
  score: number;
}

export type SchedulingErrorCode = 'NO_CANDIDATES' | 'FILTERED_OUT' | 'NO_PICK' | 'SATURATED';

export class SchedulingError extends Error {
  constructor(
    readonly code: SchedulingErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SchedulingError';
  }
}
