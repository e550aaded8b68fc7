import type { ChatMessage } from '../scheduling/types.js';

// How chat messages become one prompt text. mock-vllm and the cache-indexer
// render chats the same way, so the EPP, the indexer and the model server
// hash the same tokens (the role of a model's chat template).
export function renderChat(messages: readonly ChatMessage[]): string {
  let out = '';
  for (const m of messages) out += `<|${m.role}|>\n${m.content}\n`;
  return out + '<|assistant|>\n';
}
