// The project's simple tokenizer: every 4 bytes of UTF-8 are one token, its
// id the little-endian uint32 of those bytes (a partial last group is padded
// with zeros). mock-vllm, the cache-indexer and the EPP's length estimates
// all use it, so their token counts and KV block hashes agree without a
// model's tokenizer. Real tokenizers plug in at the cache-indexer.

export const BYTES_PER_TOKEN = 4;

const encoder = new TextEncoder();
let scratch = new Uint8Array(64 * 1024);

/** UTF-8 bytes of `text` in a reusable, 4-byte aligned scratch buffer. */
export function utf8Scratch(text: string): { bytes: Uint8Array; length: number } {
  // UTF-8 never takes more than 3 bytes per UTF-16 code unit.
  const need = text.length * 3 + 8;
  if (scratch.length < need) scratch = new Uint8Array(Math.max(need, scratch.length * 2));
  const { written } = encoder.encodeInto(text, scratch);
  // Zero the padding of the last partial token.
  const padded = Math.ceil(written / BYTES_PER_TOKEN) * BYTES_PER_TOKEN;
  scratch.fill(0, written, padded);
  return { bytes: scratch, length: written };
}

/** Token ids of `text` under the simple tokenizer. */
export function tokenizeSimple(text: string): Uint32Array {
  const { bytes, length } = utf8Scratch(text);
  const n = Math.ceil(length / BYTES_PER_TOKEN);
  const words = new Uint32Array(bytes.buffer, bytes.byteOffset, Math.ceil(bytes.length / 4));
  return words.slice(0, n);
}

/** Prompt length in tokens under the simple tokenizer, without tokenising. */
export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / BYTES_PER_TOKEN);
}
