// Parses a POST /match_sort body (docs/cache-indexer-api.md) into the
// prompt's tokens and the candidates. Text is tokenized by the indexer's
// PromptTokenizer: by default exactly as mock-vllm does (chats rendered with
// renderChat, then the simple tokenizer), or with a model's tokenizer.
import { parseBoundedJson, parseJsonText } from '../request/json-scan.js';
import { parseMessages, RequestError } from '../request/openai.js';
import { simpleTokenizer, type PromptTokenizer } from './prompt-tokenizer.js';

export interface MatchRequest {
  model: string;
  tokens: ArrayLike<number>;
  candidates: string[];
}

export const MAX_CANDIDATES = 10_000;

function tokenIds(v: unknown[], param: string): Uint32Array {
  const out = new Uint32Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const t = v[i];
    if (typeof t !== 'number' || !Number.isInteger(t) || t < 0 || t > 0xffffffff) {
      throw new RequestError(400, `${param}[${i}] must be a token id (an integer 0..2^32-1)`, param);
    }
    out[i] = t;
  }
  return out;
}

/**
 * `text` is the JSON body or its UTF-8 bytes; its shape is bounded before it
 * is parsed (json-scan.ts) unless `shapeChecked` says the reader did that.
 */
export function parseMatchRequest(
  text: string | Uint8Array,
  tokenizer: PromptTokenizer = simpleTokenizer,
  shapeChecked = false,
): MatchRequest {
  const doc = shapeChecked ? parseJsonText(text) : parseBoundedJson(text);
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new RequestError(400, 'request body must be a JSON object');
  const b = doc as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '')
    throw new RequestError(400, 'model must be a non-empty string', 'model');
  if (!Array.isArray(b.candidates))
    throw new RequestError(400, 'candidates must be a list of "ip:port" strings', 'candidates');
  if (b.candidates.length > MAX_CANDIDATES)
    throw new RequestError(400, `candidates must list at most ${MAX_CANDIDATES} endpoints`, 'candidates');
  const seen = new Set<string>();
  for (let i = 0; i < b.candidates.length; i++) {
    const c = b.candidates[i];
    if (typeof c !== 'string' || c === '')
      throw new RequestError(400, `candidates[${i}] must be a non-empty "ip:port" string`, 'candidates');
    seen.add(c);
  }
  const given = ['prompt', 'messages', 'token_ids'].filter((k) => b[k] !== undefined && b[k] !== null);
  if (given.length !== 1) {
    throw new RequestError(
      400,
      `exactly one of prompt, messages or token_ids is required${given.length ? ` (got ${given.join(', ')})` : ''}`,
    );
  }
  let tokens: ArrayLike<number>;
  if (b.token_ids !== undefined && b.token_ids !== null) {
    if (!Array.isArray(b.token_ids))
      throw new RequestError(400, 'token_ids must be a list of token ids', 'token_ids');
    tokens = tokenIds(b.token_ids, 'token_ids');
  } else if (b.messages !== undefined && b.messages !== null) {
    tokens = tokenizer.encodeChat(parseMessages(b.messages));
  } else {
    const p = b.prompt;
    if (typeof p === 'string') tokens = tokenizer.encodePrompt(p);
    else if (Array.isArray(p) && p.every((x) => typeof x === 'string'))
      tokens = tokenizer.encodePrompt((p as string[]).join(''));
    else if (Array.isArray(p)) tokens = tokenIds(p, 'prompt');
    else
      throw new RequestError(
        400,
        'prompt must be a string, a list of strings or a list of token ids',
        'prompt',
      );
  }
  return { model: b.model, tokens, candidates: [...seen] };
}
