import { describe, expect, it } from 'vitest';
import {
  textBlockHashes,
  textBlockKeys,
  tokenBlockHashes,
  tokenBlockKeys,
  tokenKeysAndDigest,
  textKeysAndDigest,
  wordBlockKeys,
} from '../../../src/request/prefix-hash.js';
import { tokenizeSimple } from '../../../src/request/tokens.js';

describe('prefix block hashes', () => {
  const block = 4; // tokens, i.e. 16 bytes
  it('hashes only full blocks', () => {
    expect(textBlockHashes('a'.repeat(15), 'm', block, 100)).toHaveLength(0);
    expect(textBlockHashes('a'.repeat(16), 'm', block, 100)).toHaveLength(1);
    expect(textBlockHashes('a'.repeat(47), 'm', block, 100)).toHaveLength(2);
  });

  it('chains: equal prefixes share leading hashes, a change alters every later block', () => {
    const a = textBlockHashes('x'.repeat(32) + 'y'.repeat(32), 'm', block, 100);
    const b = textBlockHashes('x'.repeat(32) + 'z'.repeat(32), 'm', block, 100);
    expect(a.slice(0, 2)).toEqual(b.slice(0, 2));
    expect(a[2]).not.toBe(b[2]);
    expect(a[3]).not.toBe(b[3]);
    // Same block content after a different prefix hashes differently.
    const c = textBlockHashes('q'.repeat(16) + 'x'.repeat(16), 'm', block, 100);
    expect(c[1]).not.toBe(a[0]);
  });

  it('is seeded by the model and capped by maxBlocks', () => {
    const t = 'p'.repeat(64);
    expect(textBlockHashes(t, 'm1', block, 100)[0]).not.toBe(textBlockHashes(t, 'm2', block, 100)[0]);
    expect(textBlockHashes(t, 'm', block, 2)).toHaveLength(2);
  });

  it('gives text and its token ids the same hashes', () => {
    const text = 'hello, prefix caching world! '.repeat(8);
    const usable = text.slice(0, Math.floor(Buffer.byteLength(text) / 4) * 4);
    const ids = Array.from(tokenizeSimple(usable));
    expect(tokenBlockHashes(ids, 'm', block, 100)).toEqual(textBlockHashes(usable, 'm', block, 100));
  });
});

describe('prefix block keys (routing)', () => {
  const block = 4;
  it('name the same blocks as the text hashes: equal keys exactly where the hashes are equal', () => {
    const texts = [
      'x'.repeat(32) + 'y'.repeat(32),
      'x'.repeat(32) + 'z'.repeat(32),
      'q'.repeat(16) + 'x'.repeat(48),
      'x'.repeat(64),
    ];
    const byHash = new Map<string, number>();
    for (const t of texts) {
      const hashes = textBlockHashes(t, 'm', block, 100);
      const keys = textBlockKeys(t, 'm', block, 100);
      expect(keys).toBeInstanceOf(Float64Array);
      expect(keys.length).toBe(hashes.length);
      hashes.forEach((h, i) => {
        const k = keys[i]!;
        expect(Number.isSafeInteger(k) && k >= 0).toBe(true);
        if (byHash.has(h)) expect(byHash.get(h)).toBe(k);
        else byHash.set(h, k);
      });
    }
    expect(new Set(byHash.values()).size).toBe(byHash.size);
  });

  it('are capped, seeded by the model and equal for text and its token ids', () => {
    const text = 'hello, prefix caching world! '.repeat(8);
    const usable = text.slice(0, Math.floor(Buffer.byteLength(text) / 4) * 4);
    const ids = Array.from(tokenizeSimple(usable));
    expect(tokenBlockKeys(ids, 'm', block, 100)).toEqual(textBlockKeys(usable, 'm', block, 100));
    expect(textBlockKeys(usable, 'm', block, 3)).toHaveLength(3);
    expect(textBlockKeys(usable, 'm1', block, 1)[0]).not.toBe(textBlockKeys(usable, 'm2', block, 1)[0]);
    expect(textBlockKeys('a'.repeat(15), 'm', block, 100)).toHaveLength(0);
  });
});

describe('block keys from UTF-8 words', () => {
  it('equal the text keys of the same bytes', () => {
    const text = 'héllo wörld, prefix caching! '.repeat(9);
    const bytes = Buffer.from(text);
    const words = new Uint32Array(Math.floor(bytes.length / 4));
    for (let i = 0; i < words.length; i++) words[i] = bytes.readUInt32LE(i * 4);
    expect(wordBlockKeys(words, 'm', 4, 100)).toEqual(textBlockKeys(text, 'm', 4, 100));
  });
});

describe('block keys of a long text', () => {
  it('encode only the head the blocks need, with a surrogate pair on either side of the cut', () => {
    for (let k = 20; k < 44; k++) {
      const text = `${'a'.repeat(k)}😀é${'😀'.repeat(40)}`;
      const bytes = Buffer.from(text);
      const words = new Uint32Array(Math.floor(bytes.length / 4));
      for (let i = 0; i < words.length; i++) words[i] = bytes.readUInt32LE(i * 4);
      for (const max of [1, 2, 3, 10]) {
        expect(textBlockKeys(text, 'm', 4, max)).toEqual(wordBlockKeys(words, 'm', 4, max));
        expect(textBlockHashes(text, 'm', 4, max)).toHaveLength(Math.min(max, Math.floor(words.length / 4)));
      }
    }
  });
});

describe('block keys tell prefixes apart', () => {
  it('one word changed changes the key of its block and of every block after it, not before', () => {
    const blockWords = 4;
    const words = new Uint32Array(64);
    for (let i = 0; i < words.length; i++) words[i] = Math.imul(i + 1, 0x9e3779b1) >>> 0;
    const base = wordBlockKeys(words, 'm', blockWords, 100);
    const seen = new Set<number>(base);
    for (let w = 0; w < words.length; w++) {
      for (const delta of [1, 0x80000000, 0xffffffff]) {
        const changed = words.slice();
        changed[w] = (changed[w]! ^ delta) >>> 0;
        const keys = wordBlockKeys(changed, 'm', blockWords, 100);
        const first = Math.floor(w / blockWords);
        for (let b = 0; b < keys.length; b++) {
          if (b < first) expect(keys[b]).toBe(base[b]);
          else expect(keys[b]).not.toBe(base[b]);
        }
        for (let b = first; b < keys.length; b++) seen.add(keys[b]!);
      }
    }
    // Every changed prefix got a key of its own: no two of them collide either.
    let changedPrefixes = 0;
    for (let w = 0; w < words.length; w++) changedPrefixes += 3 * (16 - Math.floor(w / blockWords));
    expect(seen.size).toBe(base.length + changedPrefixes);
  });
});

describe('block keys with the whole-prompt digest (indexer-answer cache key)', () => {
  const text = 'The quick brown fox jumps over the lazy dog; 0123456789 and a tail of ten.';

  it('gives the block keys textBlockKeys gives, for every length and block setting', () => {
    for (let len = 0; len <= text.length; len++) {
      for (const [block, max] of [
        [1, 0],
        [2, 3],
        [4, 100],
        [5, 2],
      ] as const) {
        const t = text.slice(0, len);
        expect(textKeysAndDigest(t, 'm', block, max).keys).toEqual(textBlockKeys(t, 'm', block, max));
      }
    }
  });

  it('equal prompts give equal digests (a fresh encoding each time)', () => {
    const a = textKeysAndDigest(text, 'm', 4, 2).digest;
    textKeysAndDigest('something else entirely, longer than the first one was', 'm', 4, 2);
    expect(textKeysAndDigest(`${text}`, 'm', 4, 2).digest).toBe(a);
  });

  it('any differing byte gives a different digest, inside or past the blocks hashed', () => {
    for (const [block, max] of [
      [1, 0],
      [4, 2],
      [4, 100],
    ] as const) {
      const base = textKeysAndDigest(text, 'm', block, max).digest;
      const seen = new Set([base]);
      for (let i = 0; i < text.length; i++) {
        const changed = text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1);
        const d = textKeysAndDigest(changed, 'm', block, max).digest;
        expect(d).not.toBe(base);
        seen.add(d);
      }
      expect(seen.size).toBe(text.length + 1);
    }
  });

  it('a prefix, trailing zero bytes, another model or token ids give other digests', () => {
    const base = textKeysAndDigest(text, 'm', 4, 2).digest;
    for (let len = 0; len < text.length; len++)
      expect(textKeysAndDigest(text.slice(0, len), 'm', 4, 2).digest).not.toBe(base);
    expect(textKeysAndDigest('abc', 'm', 4, 2).digest).not.toBe(textKeysAndDigest('abc\0', 'm', 4, 2).digest);
    expect(textKeysAndDigest(text, 'n', 4, 2).digest).not.toBe(base);
    const ids = Array.from(tokenizeSimple(text));
    expect(tokenKeysAndDigest(ids, 'm', 4, 2).digest).not.toBe(base);
    expect(tokenKeysAndDigest(ids, 'm', 4, 2).keys).toEqual(tokenBlockKeys(ids, 'm', 4, 2));
    expect(tokenKeysAndDigest(ids, 'm', 4, 2).digest).toBe(tokenKeysAndDigest([...ids], 'm', 4, 2).digest);
    expect(tokenKeysAndDigest([...ids, 0], 'm', 4, 2).digest).not.toBe(
      tokenKeysAndDigest(ids, 'm', 4, 2).digest,
    );
  });
});
