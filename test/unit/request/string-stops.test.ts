// The WebAssembly stop finder must give, for every position, the first
// quote, backslash or control character at or after it, as a byte loop does.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadForStops, MAX_BYTES, stopsAvailable } from '../../../src/request/string-stops.js';

function byteLoop(b: Uint8Array, n: number, from: number): number {
  for (let i = from; i < n; i++) if (b[i]! < 0x20 || b[i] === 0x22 || b[i] === 0x5c) return i;
  return n;
}

/** Mostly plain bytes, with a stop now and then. */
const body = fc.array(
  fc.oneof(
    { weight: 30, arbitrary: fc.integer({ min: 0x20, max: 0xff }).filter((c) => c !== 0x22 && c !== 0x5c) },
    { weight: 1, arbitrary: fc.constantFrom(0x00, 0x0a, 0x1f, 0x22, 0x5c) },
  ),
  { maxLength: 400, size: 'max' },
);

describe('string stops', () => {
  it('runs here (Node has WebAssembly SIMD)', () => {
    expect(stopsAvailable()).toBe(true);
  });

  it('hand-computed positions', () => {
    const b = Buffer.from('0123456789abcdef0123456789abcdef"x\\y\nz');
    const stop = loadForStops(b, b.length)!;
    // The first stop is the quote at 32 (past two whole 16-byte blocks).
    expect(stop(0)).toBe(32);
    expect(stop(33)).toBe(34);
    expect(stop(35)).toBe(36);
    expect(stop(37)).toBe(b.length);
    expect(stop(b.length)).toBe(b.length);
    // Bytes 0x7f-0xff (UTF-8 continuation and lead bytes) are not stops; 0x1f is, 0x20 is not.
    const c = Buffer.from([0x20, 0x7f, 0x80, 0xff, 0xc3, 0xa9, 0x1f]);
    expect(loadForStops(c, c.length)!(0)).toBe(6);
  });

  it('every position of generated bodies, at any offset and length, as a byte loop', () => {
    fc.assert(
      fc.property(body, fc.nat(15), fc.nat(), (bytes, offset, cut) => {
        // A view at an odd offset of a larger buffer, as the body pool hands out.
        const whole = Buffer.alloc(bytes.length + offset + 16, 0x61);
        Buffer.from(bytes).copy(whole, offset);
        const b = whole.subarray(offset, offset + bytes.length + 16);
        const n = bytes.length === 0 ? 0 : cut % (bytes.length + 1);
        const stop = loadForStops(b, n)!;
        for (let i = 0; i <= n; i++) expect(stop(i)).toBe(byteLoop(b, n, i));
      }),
      { numRuns: 300 },
    );
  });

  it('a body larger than the memory grows it; past MAX_BYTES the JavaScript path is kept', () => {
    const big = Buffer.alloc(300_000, 0x61);
    big[299_990] = 0x22;
    expect(loadForStops(big, big.length)!(0)).toBe(299_990);
    expect(loadForStops(Buffer.alloc(MAX_BYTES + 1), MAX_BYTES + 1)).toBeUndefined();
  });
});
