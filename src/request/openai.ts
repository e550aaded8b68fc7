// Parses an OpenAI-style request body once into an LLMRequest.
// /v1/chat/completions: `messages` with string or array-of-parts content.
// /v1/completions (and unknown paths, as GIE does): `prompt` as a string,
// a list of strings, or token ids.
import type { ApiType, ChatMessage, LLMRequest } from '../scheduling/types.js';
import { renderChat } from './chat-template.js';
import { estimateTokens } from './tokens.js';
import { RequestError } from './errors.js';
import { parseBoundedJson, parseJsonText } from './json-scan.js';
import { scanOpenAIRequest, type ScannedRequest } from './openai-scan.js';

export { openAIErrorBody, RequestError } from './errors.js';

/** Longer `model` strings are refused (real model ids are well under 200 characters). */
export const MAX_MODEL_CHARS = 1024;

export function apiTypeOfPath(path: string): ApiType {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  return p.endsWith('/chat/completions') ? 'chat' : 'completions';
}

function contentText(content: unknown, i: number): string {
  if (typeof content === 'string') return content;
  if (content === null || content === undefined) return '';
  if (Array.isArray(content)) {
    let out = '';
    for (let j = 0; j < content.length; j++) {
      const part = content[j] as { type?: unknown; text?: unknown } | null;
      if (typeof part !== 'object' || part === null) {
        throw new RequestError(
          400,
          `messages[${i}].content[${j}] must be an object`,
          `messages[${i}].content`,
        );
      }
      if (typeof part.text === 'string') out += part.text;
      else if (part.type === 'text') {
        throw new RequestError(
          400,
          `messages[${i}].content[${j}].text must be a string`,
          `messages[${i}].content`,
        );
      }
    }
    return out;
  }
  throw new RequestError(
    400,
    `messages[${i}].content must be a string or an array of parts`,
    `messages[${i}].content`,
  );
}

export function parseMessages(raw: unknown): ChatMessage[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new RequestError(400, 'messages must be a non-empty array', 'messages');
  }
  const out: ChatMessage[] = new Array(raw.length);
  for (let i = 0; i < raw.length; i++) {
    const m = raw[i] as { role?: unknown; content?: unknown } | null;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) {
      throw new RequestError(400, `messages[${i}] must be an object`, 'messages');
    }
    if (typeof m.role !== 'string' || m.role === '') {
      throw new RequestError(400, `messages[${i}].role must be a non-empty string`, `messages[${i}].role`);
    }
    out[i] = { role: m.role, content: contentText(m.content, i) };
  }
  return out;
}

function isTokenArray(v: unknown[]): v is number[] {
  for (const t of v) if (typeof t !== 'number' || !Number.isInteger(t) || t < 0) return false;
  return true;
}

export interface ParsedBody {
  request: LLMRequest;
  /** The decoded JSON object (for plugins that must mutate the body). */
  body: Record<string, unknown>;
}

/**
 * `body` is the JSON text or its UTF-8 bytes. Its shape is checked first
 * (json-scan.ts) unless `shapeChecked` says a BodyBuffer already did while
 * the bytes arrived.
 */
export function parseOpenAIRequest(
  path: string,
  body: string | Uint8Array,
  headers: Readonly<Record<string, string>>,
  requestId: string,
  shapeChecked = false,
): ParsedBody {
  const doc = shapeChecked ? parseJsonText(body) : parseBoundedJson(body);
  return requestOf(path, doc, headers, requestId);
}

/** A request and its body decoded on demand (only a body rewrite needs the JSON). */
export type ReadRequest = ScannedRequest;

/**
 * parseOpenAIRequest for a body whose shape a BodyBuffer already checked
 * (the ext_proc path): the one-pass byte reader (openai-scan.ts) answers
 * the requests it can answer exactly; the rest, errors included, take the
 * full parse, so every answer is the one parseOpenAIRequest gives.
 */
export function readOpenAIRequest(
  path: string,
  body: Buffer,
  headers: Readonly<Record<string, string>>,
  requestId: string,
): ReadRequest {
  const fast = scanOpenAIRequest(apiTypeOfPath(path), body, headers, requestId, MAX_MODEL_CHARS);
  if (fast) return fast;
  const { request, body: obj } = parseOpenAIRequest(path, body, headers, requestId, true);
  // Decoded in full: nothing refers to the body any more.
  return { request, json: () => obj, detach: () => undefined };
}

function requestOf(
  path: string,
  body: unknown,
  headers: Readonly<Record<string, string>>,
  requestId: string,
): ParsedBody {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new RequestError(400, 'request body must be a JSON object');
  }
  const obj = body as Record<string, unknown>;
  if (typeof obj.model !== 'string' || obj.model === '') {
    throw new RequestError(400, 'model must be a non-empty string', 'model');
  }
  if (obj.model.length > MAX_MODEL_CHARS) {
    // It goes into logs, the decisions ring and (once served) metric labels.
    throw new RequestError(400, `model must be at most ${MAX_MODEL_CHARS} characters`, 'model');
  }
  if (obj.stream !== undefined && obj.stream !== null && typeof obj.stream !== 'boolean') {
    throw new RequestError(400, 'stream must be a boolean', 'stream');
  }
  const apiType = apiTypeOfPath(path);
  const req: LLMRequest = {
    requestId,
    model: obj.model,
    apiType,
    promptText: '',
    promptTokens: 0,
    stream: obj.stream === true,
    headers,
  };
  if (apiType === 'chat') {
    req.messages = parseMessages(obj.messages);
    req.promptText = renderChat(req.messages);
    req.promptTokens = estimateTokens(req.promptText);
  } else {
    const prompt = obj.prompt;
    if (typeof prompt === 'string') {
      if (prompt === '') throw new RequestError(400, 'prompt must not be empty', 'prompt');
      req.promptText = prompt;
      req.promptTokens = estimateTokens(prompt);
    } else if (Array.isArray(prompt) && prompt.length > 0) {
      if (isTokenArray(prompt)) {
        req.tokenIds = prompt;
        req.promptTokens = prompt.length;
      } else if (prompt.every((p) => typeof p === 'string')) {
        req.promptText = (prompt as string[]).join('');
        req.promptTokens = estimateTokens(req.promptText);
      } else {
        throw new RequestError(
          400,
          'prompt must be a string, a list of strings or a list of token ids',
          'prompt',
        );
      }
    } else {
      throw new RequestError(
        400,
        'prompt must be a non-empty string, list of strings or list of token ids',
        'prompt',
      );
    }
  }
  return { request: req, body: obj };
}
