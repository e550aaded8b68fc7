// Token usage from a model server's answer: the top-level `usage` object of a
// JSON body, or of the first SSE `data:` event that carries one (vLLM sends
// it in the last chunk when the client asked for
// stream_options.include_usage). Chunks arrive split anywhere, so SSE lines
// are reassembled across chunks; a JSON body is kept only up to a cap.
import type { Usage } from '../observability/request-observer.js';

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
  private readonly decoder = new TextDecoder('utf-8');

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
      if (this.jsonBytes > this.jsonCap) {
        this.jsonOverCap = true;
        this.jsonParts = [];
      } else this.jsonParts.push(chunk);
    }
  }

  private pushSse(chunk: Buffer): void {
    const text = this.lineTail + this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl < 0) break;
      this.sseLine(text.slice(start, nl));
      if (this.usage) {
        this.lineTail = '';
        return;
      }
      start = nl + 1;
    }
    this.lineTail = text.slice(start);
  }

  private sseLine(raw: string): void {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (!line.startsWith('data:')) return;
    const data = line.slice(5).trim();
    if (data === '' || data === '[DONE]' || data[0] !== '{' || !data.includes('usage')) return;
    try {
      this.usage = usageOf(JSON.parse(data));
    } catch {
      // Not JSON: not ours to judge.
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
      this.usage = usageOf(JSON.parse(Buffer.concat(this.jsonParts).toString('utf8')));
    } catch {
      // An answer that is not JSON passes through unchanged, without usage.
    }
    this.jsonParts = [];
    return this.usage;
  }
}
