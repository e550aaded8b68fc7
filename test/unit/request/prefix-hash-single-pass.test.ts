// The one-pass keys and digest against the hashing's definition (block keys,
// text hashes and digest: prefix-hash-reference.ts), over
// random prompts: multi-byte UTF-8 (lone surrogates included, which both
// encoders turn into U+FFFD), token ids, and chat message arrays read by the
// body reader (its bytes) and by the full parse (the string).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  textBlockHashes,
  textBlockKeys,
  textKeysAndDigest,
  tokenBlockKeys,
  tokenKeysAndDigest,
  utf8BlockKeys,
  utf8KeysAndDigest,
} from '../../../src/request/prefix-hash.js';
import { scanOpenAIRequest } from '../../../src/request/openai-scan.js';
import { MAX_MODEL_CHARS, parseOpenAIRequest } from '../../../src/request/openai.js';
import { referenceDigest, referenceHashes, referenceKeys } from './prefix-hash-reference.js';

const text = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 300 }),
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  // Long enough for many blocks and a long rest.
  fc.string({ unit: fc.constantFrom('a', 'é', '中', '😀', '\n', '"'), minLength: 200, maxLength: 3000 }),
);
const model = fc.constantFrom('m', 'llama-3', 'модель');
/** [block size in tokens, max blocks]: no keys at all (the digest alone), a few, all. */
const blocks = fc.tuple(
  fc.integer({ min: 1, max: 9 }),
  fc.constantFrom(0, 1, 3, 64, Number.MAX_SAFE_INTEGER),
);

describe('one-pass block keys and digest equal their definition', () => {
  it('text: keys, text hashes and the digest as defined', () => {
    fc.assert(
      fc.property(text, model, blocks, (t, m, [block, max]) => {
        const bytes = Buffer.from(t, 'utf8');
        const both = textKeysAndDigest(t, m, block, max);
        const keys = referenceKeys(bytes, m, block, max);
        expect(Array.from(both.keys)).toEqual(keys);
        expect(Array.from(textBlockKeys(t, m, block, max))).toEqual(keys);
        expect(textBlockHashes(t, m, block, max)).toEqual(referenceHashes(bytes, m, block, max));
        expect(both.digest).toBe(referenceDigest(bytes, m, block, max));
      }),
      { numRuns: 400 },
    );
  });

  it('token ids: keys and the digest as defined (marked t)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { maxLength: 200 }),
        model,
        blocks,
        (ids, m, [block, max]) => {
          const bytes = Buffer.alloc(ids.length * 4);
          ids.forEach((id, i) => bytes.writeUInt32LE(id, i * 4));
          const both = tokenKeysAndDigest(ids, m, block, max);
          expect(Array.from(both.keys)).toEqual(referenceKeys(bytes, m, block, max));
          expect(Array.from(tokenBlockKeys(ids, m, block, max))).toEqual(Array.from(both.keys));
          expect(both.digest).toBe(referenceDigest(bytes, m, block, max, 't'));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('chat message arrays: the body reader’s bytes give what the parsed string gives', () => {
    const content = fc.oneof(
      text,
      fc.array(fc.record({ type: fc.constant('text'), text }), { minLength: 1, maxLength: 3 }),
    );
    const messages = fc.array(
      fc.record({ role: fc.constantFrom('system', 'user', 'assistant', 'tool'), content }),
      { minLength: 1, maxLength: 4 },
    );
    fc.assert(
      fc.property(messages, model, blocks, (msgs, m, [block, max]) => {
        const body = JSON.stringify({ model: m, messages: msgs });
        const scanned = scanOpenAIRequest('chat', Buffer.from(body, 'utf8'), {}, 'r', MAX_MODEL_CHARS);
        const parsed = parseOpenAIRequest('/v1/chat/completions', body, {}, 'r').request;
        const bytes = Buffer.from(parsed.promptText, 'utf8');
        const fromText = textKeysAndDigest(parsed.promptText, m, block, max);
        expect(fromText.digest).toBe(referenceDigest(bytes, m, block, max));
        expect(Array.from(fromText.keys)).toEqual(referenceKeys(bytes, m, block, max));
        // Lone surrogates make the body reader hand the body to the full parse: nothing to compare then.
        if (!scanned) return;
        const p = scanned.request.promptUtf8!;
        expect(utf8KeysAndDigest(p, m, block, max)).toEqual(fromText);
        expect(Array.from(utf8BlockKeys(p, m, block, max))).toEqual(referenceKeys(bytes, m, block, max));
      }),
      { numRuns: 300 },
    );
  });

  it('one call leaves nothing behind for the next (shared scratch lanes)', () => {
    const long = 'x'.repeat(40_000) + 'é';
    const a = textKeysAndDigest('short prompt, a few blocks', 'm', 1, 64);
    textKeysAndDigest(long, 'm', 16, Number.MAX_SAFE_INTEGER);
    textBlockHashes(long, 'm', 4, Number.MAX_SAFE_INTEGER);
    expect(textKeysAndDigest('short prompt, a few blocks', 'm', 1, 64)).toEqual(a);
  });
});
