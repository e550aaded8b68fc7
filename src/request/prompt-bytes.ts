// A prompt as UTF-8 bytes: what the body reader (openai-scan.ts) yields and
// what prefix hashing and digests consume, so a long prompt is never
// decoded into a JS string and encoded back just to be hashed.
import type { PromptBytes, PromptUtf8 } from '../scheduling/types.js';

export type { PromptBytes, PromptUtf8 };

/**
 * Room for at most `maxBytes` bytes: 4-byte aligned, so the word view needs
 * no copy. `sealPrompt` then fixes the real length.
 */
export function promptBuffer(maxBytes: number): Buffer {
  // Small ones come from Node's pool, whose slices start 8-byte aligned; large ones at offset 0.
  // Not zeroed: sealPrompt pads.
  return Buffer.allocUnsafe(Math.ceil(maxBytes / 4) * 4 + 4);
}

/** The PromptBytes of the first `length` bytes of a promptBuffer (zero-pads the last word). */
export function sealPrompt(buf: Uint8Array, length: number): PromptBytes {
  const padded = Math.ceil(length / 4) * 4;
  buf.fill(0, length, padded);
  return {
    bytes: buf.subarray(0, length),
    words: new Uint32Array(buf.buffer, buf.byteOffset, padded / 4),
  };
}

/**
 * Room for `maxBytes` in one buffer shared by every caller, grown and never
 * shrunk: for bytes rendered, read and dropped within one synchronous call
 * (hashing a prompt), so a decision does not allocate a prompt-sized buffer
 * (a fresh 128 KB one costs its page faults, ~30 us, beside the copy).
 */
let scratch = Buffer.allocUnsafe(0);
export function scratchPromptBuffer(maxBytes: number): Buffer {
  const need = Math.ceil(maxBytes / 4) * 4 + 4;
  if (scratch.length < need) scratch = Buffer.allocUnsafe(Math.max(need, 2 * scratch.length));
  return scratch;
}
