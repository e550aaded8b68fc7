// Token usage from a model server's answer: the top-level `usage` object of a
// JSON body, or of the first SSE `data:` event that carries one (vLLM sends
// it in the last chunk when the client asked for
// stream_options.include_usage). Chunks arrive split anywhere, so SSE lines
// are reassembled across chunks; a JSON body, and an SSE line, is kept only
// up to a cap. A model server is no more trusted than a client: its JSON gets
// the request side's shape bounds (depth, containers per byte) before
// JSON.parse, and an answer past them passes through without usage.
import type { Usage } from '../observability/request-observer.js';
import { checkJsonShape, DEFAULT_JSON_BOUNDS, JsonShapeScanner } from '../request/json-scan.js';

export type { Usage };

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

/** Usage of one decoded answer object (chat/completions or Responses API shapes). */
export function usageOf(obj: unknown): Usage | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  const o = obj as { usage?: unknown; type?: unknown; response?: { usage?: unknown } };
  let u = o.usage;
  if ((u === undefined || u === null) && o.type === 'response.completed') u = o.response?.usage;
  if (typeof u !== 'object' || u === null) return undefined;
  const r = u as Record<string, unknown>;
  const details = (r.prompt_tokens_details ?? r.prompt_token_details) as
    { cached_tokens?: unknown } | undefined;
  const out: Usage = {
    promptTokens: num(r.prompt_tokens) ?? num(r.input_tokens),
    completionTokens: num(r.completion_tokens) ?? num(r.output_tokens),
    totalTokens: num(r.total_tokens),
    cachedTokens: num(details?.cached_tokens),
  };
  return out;
}

const DEFAULT_JSON_CAP = 4 * 1024 * 1024;

/** Feeds response body chunks; `finish()` returns the usage found, if any. */
export class UsageTracker {
  private usage: Usage | undefined;
  private lineTail = '';
  private jsonParts: Buffer[] = [];
  private jsonBytes = 0;
  private jsonOverCap = false;
  private readonly jsonShape = new JsonShapeScanner(DEFAULT_JSON_BOUNDS);
  /** Inside an SSE line that outgrew the cap: dropped up to its newline. */
  private skippingLine = false;
  /** Made on the first SSE chunk: most answers are one JSON body, and it costs a microsecond. */
  private decoder: InstanceType<typeof TextDecoder> | undefined;

  constructor(
    private sse: boolean,
    private readonly jsonCap = DEFAULT_JSON_CAP,
  ) {}

  /** The response turned out to be SSE (content-type) after construction. */
  setSse(sse: boolean): void {
    this.sse = sse;
  }

  push(chunk: Buffer): void {
    if (this.usage) return;
    if (this.sse) this.pushSse(chunk);
    else if (!this.jsonOverCap) {
      this.jsonBytes += chunk.length;
      if (this.jsonBytes > this.jsonCap) return this.giveUpJson();
      try {
        this.jsonShape.push(chunk);
      } catch {
        return this.giveUpJson(); // too deep: no usage rather than an unbounded parse
      }
      this.jsonParts.push(chunk);
    }
  }

  private giveUpJson(): void {
    this.jsonOverCap = true;
    this.jsonParts = [];
  }

  private pushSse(chunk: Buffer): void {
    let fresh = (this.decoder ??= new TextDecoder('utf-8')).decode(chunk, { stream: true });
    if (this.skippingLine) {
      const nl = fresh.indexOf('\n');
      if (nl < 0) return;
      this.skippingLine = false;
      fresh = fresh.slice(nl + 1);
    }
    // Only the new text can hold the next newline: a long line is not rescanned per chunk.
    let from = this.lineTail.length;
    const text = this.lineTail + fresh;
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', from);
      if (nl < 0) break;
      this.sseLine(text.slice(start, nl));
      if (this.usage) {
        this.lineTail = '';
        return;
      }
      start = from = nl + 1;
    }
    this.lineTail = text.slice(start);
    if (this.lineTail.length > this.jsonCap) {
      this.lineTail = '';
      this.skippingLine = true;
    }
  }

  private sseLine(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith('data:')) return;
    const data = line.slice(5).trim();
    if (data === '' || data === '[DONE]' || data[0] !== '{' || !data.includes('usage')) return;
    try {
      checkJsonShape(data);
      this.usage = usageOf(JSON.parse(data));
    } catch {
      // Not JSON, or past the shape bounds: not ours to judge, and no usage.
    }
  }

  finish(): Usage | undefined {
    if (this.usage) return this.usage;
    if (this.sse) {
      if (this.lineTail) this.sseLine(this.lineTail);
      return this.usage;
    }
    if (this.jsonParts.length === 0) return undefined;
    try {
      this.jsonShape.finish();
      const parts = this.jsonParts;
      // One chunk (most answers) needs no joined copy.
      const body = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      this.usage = usageOf(JSON.parse(body.toString('utf8')));
    } catch {
      // An answer that is not JSON passes through unchanged, without usage.
    }
    this.jsonParts = [];
    return this.usage;
  }
}
