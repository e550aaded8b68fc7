// How the cache-indexer turns a text prompt into the token ids the model
// server cached. Default: the project's simple tokenizer and chat rendering,
// exactly as mock-vllm does. With --tokenizer FILE: a model's tokenizer.json
// (Hugging Face format, via @huggingface/tokenizers) plus, for chats, the
// chat template of the tokenizer_config.json beside it (Jinja, via
// @huggingface/jinja), the way vLLM tokenises: a completions prompt with the
// tokenizer's special tokens, a rendered chat without adding them again.
import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { renderChat } from '../request/chat-template.js';
import { RequestError } from '../request/openai.js';
import { tokenizeSimple } from '../request/tokens.js';
import type { ChatMessage } from '../scheduling/types.js';

export interface PromptTokenizer {
  readonly kind: 'simple' | 'huggingface';
  encodePrompt(text: string): ArrayLike<number>;
  encodeChat(messages: readonly ChatMessage[]): ArrayLike<number>;
}

export const simpleTokenizer: PromptTokenizer = {
  kind: 'simple',
  encodePrompt: (text) => tokenizeSimple(text),
  encodeChat: (messages) => tokenizeSimple(renderChat(messages)),
};

function readJson(file: string, what: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${what} ${file}: cannot read it (${(e as Error).message})`);
  }
  try {
    const doc = JSON.parse(text) as unknown;
    if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('not a JSON object');
    return doc as Record<string, unknown>;
  } catch (e) {
    throw new Error(`${what} ${file}: expected a JSON object (${(e as Error).message})`);
  }
}

/** Never a real token id: a prefix match stops where the tokenizer found no id. */
export const NO_TOKEN = 0xffffffff;

/** Some tokenizer models leave ids of unknown pieces undefined; those must not read as token 0. */
function knownIds(ids: ArrayLike<number | undefined>): Uint32Array {
  const out = new Uint32Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    out[i] = typeof id === 'number' && Number.isInteger(id) && id >= 0 ? id : NO_TOKEN;
  }
  return out;
}

/** A special token as tokenizer_config.json writes it: a string or {content}. */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return undefined;
}

/**
 * Loads `tokenizer.json` and, when present (or named), the tokenizer_config.json
 * beside it. Throws a clear error naming the file on anything unusable.
 */
export function loadHuggingFaceTokenizer(tokenizerFile: string, configFile?: string): PromptTokenizer {
  const tokenizerJson = readJson(tokenizerFile, 'tokenizer');
  const cfgPath = configFile ?? join(dirname(tokenizerFile), 'tokenizer_config.json');
  const config = configFile || existsSync(cfgPath) ? readJson(cfgPath, 'tokenizer config') : {};
  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new Error(`tokenizer ${tokenizerFile}: not a usable tokenizer.json (${(e as Error).message})`);
  }
  let template: Template | undefined;
  const rawTemplate = config.chat_template;
  const templateText =
    typeof rawTemplate === 'string'
      ? rawTemplate
      : Array.isArray(rawTemplate)
        ? (rawTemplate as Array<{ name?: string; template?: string }>).find((t) => t.name === 'default')
            ?.template
        : undefined;
  if (templateText) {
    try {
      template = new Template(templateText);
    } catch (e) {
      throw new Error(`tokenizer config ${cfgPath}: chat_template does not parse (${(e as Error).message})`);
    }
  }
  const specials = {
    bos_token: tokenText(config.bos_token) ?? '',
    eos_token: tokenText(config.eos_token) ?? '',
  };
  return {
    kind: 'huggingface',
    encodePrompt: (text) => knownIds(tokenizer.encode(text).ids),
    encodeChat: (messages) => {
      // Without a template the project's rendering is the best available guess.
      let text: string;
      try {
        text = template
          ? template.render({ messages, add_generation_prompt: true, ...specials })
          : renderChat(messages);
      } catch (e) {
        // The template, not the request, is at fault; the EPP scores without hit rates.
        throw new RequestError(500, `chat template of ${cfgPath} failed to render: ${(e as Error).message}`);
      }
      return knownIds(tokenizer.encode(text, { add_special_tokens: false }).ids);
    },
  };
}
