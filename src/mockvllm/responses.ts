// OpenAI-shaped bodies mock-vllm answers with: chat.completion,
// chat.completion.chunk and text_completion, with usage as vLLM reports it.
import type { ApiType } from '../scheduling/types.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export function usageOf(promptTokens: number, completionTokens: number, cachedTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
    prompt_tokens_details: { cached_tokens: cachedTokens },
  };
}

// The generated text: 4 ASCII bytes per piece, so each piece is exactly one
// token of the simple tokenizer and usage counts match the text.
const ANSWER = 'This is a simulated answer from mock-vllm, one token per four bytes. ';
const PIECES: string[] = [];
for (let i = 0; i + 4 <= ANSWER.length; i += 4) PIECES.push(ANSWER.slice(i, i + 4));

export function tokenText(i: number): string {
  return PIECES[i % PIECES.length]!;
}

export function answerText(tokens: number): string {
  let s = '';
  for (let i = 0; i < tokens; i++) s += tokenText(i);
  return s;
}

export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
  apiType: ApiType;
}

export function fullResponse(
  m: ResponseMeta,
  text: string,
  finishReason: string,
  usage: Usage,
  kvTransferParams: Record<string, unknown> | undefined,
): Record<string, unknown> {
  const choice =
    m.apiType === 'chat'
      ? {
          index: 0,
          message: { role: 'assistant', content: text },
          logprobs: null,
          finish_reason: finishReason,
          stop_reason: null,
        }
      : { index: 0, text, logprobs: null, finish_reason: finishReason, stop_reason: null };
  const body: Record<string, unknown> = {
    id: m.id,
    object: m.apiType === 'chat' ? 'chat.completion' : 'text_completion',
    created: m.created,
    model: m.model,
    choices: [choice],
    usage,
  };
  if (kvTransferParams) body.kv_transfer_params = kvTransferParams;
  return body;
}

/** One SSE chunk; `text` undefined with a finish reason is the closing chunk. */
export function chunk(
  m: ResponseMeta,
  text: string | undefined,
  opts: { first?: boolean; finishReason?: string; kvTransferParams?: Record<string, unknown> } = {},
): string {
  const finish = opts.finishReason ?? null;
  let choice: Record<string, unknown>;
  if (m.apiType === 'chat') {
    const delta: Record<string, unknown> = {};
    if (opts.first) delta.role = 'assistant';
    if (text !== undefined) delta.content = text;
    choice = { index: 0, delta, logprobs: null, finish_reason: finish };
  } else {
    choice = { index: 0, text: text ?? '', logprobs: null, finish_reason: finish };
  }
  const body: Record<string, unknown> = {
    id: m.id,
    object: m.apiType === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: m.created,
    model: m.model,
    choices: [choice],
  };
  if (opts.kvTransferParams) body.kv_transfer_params = opts.kvTransferParams;
  return `data: ${JSON.stringify(body)}\n\n`;
}

/** The usage-only chunk sent last when stream_options.include_usage is set. */
export function usageChunk(m: ResponseMeta, usage: Usage): string {
  const body = {
    id: m.id,
    object: m.apiType === 'chat' ? 'chat.completion.chunk' : 'text_completion',
    created: m.created,
    model: m.model,
    choices: [],
    usage,
  };
  return `data: ${JSON.stringify(body)}\n\n`;
}

export const DONE = 'data: [DONE]\n\n';
