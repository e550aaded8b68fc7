// Where a JSON string's run of plain bytes stops: the first quote, backslash
// or control character (a byte below 0x20) at or after a position. The
// one-pass reader (openai-scan.ts) asks this for every string of the body,
// and most of a prompt's bytes are in strings: at 220 KB the JavaScript
// check (memchr for the quote and the backslash, then eight bytes at a time
// for control characters) was ~90 us, the largest part of the EPP's own
// work on a long request.
//
// Here a few lines of WebAssembly SIMD do it sixteen bytes at a time: each
// block is compared against the three stops at once, and the first stop's
// position comes from the block's bitmask. WebAssembly reads only its own
// memory, so a body is copied in once per scan (a memcpy, a few us at
// 220 KB); the memory grows to the largest body it was given, up to
// MAX_BYTES, and larger bodies keep the JavaScript path. A runtime without
// WebAssembly SIMD keeps it too. test/unit/request/string-stops.test.ts
// compares both paths on every position of generated bodies.

/** Bodies up to this are copied in; the memory never shrinks, so this bounds what it keeps. */
export const MAX_BYTES = 4 * 1024 * 1024;
const PAGE = 64 * 1024;

// The module, assembled by hand (the WebAssembly binary format, SIMD proposal):
//   (memory (export "m") 1)
//   (func (export "stop") (param $i i32) (param $n i32) (result i32)
//     (local $v v128) (local $mask i32) (local $c i32)
//     block $bytes
//       loop $blocks
//         (br_if $bytes (i32.gt_u (i32.add $i 16) $n))
//         $v = (v128.load $i)
//         $mask = (i8x16.bitmask (v128.or (i8x16.lt_u $v (splat 0x20))
//                   (v128.or (i8x16.eq $v (splat 0x22)) (i8x16.eq $v (splat 0x5c)))))
//         (if $mask (return (i32.add $i (i32.ctz $mask))))
//         $i += 16
//         br $blocks
//       end
//     end
//     loop $tail                       ;; the last < 16 bytes, one at a time
//       (if (i32.ge_u $i $n) (return $n))
//       $c = (i32.load8_u $i)
//       (if (i32.or (i32.lt_u $c 0x20) (i32.or (i32.eq $c 0x22) (i32.eq $c 0x5c))) (return $i))
//       $i += 1
//       br $tail
//     end
//     unreachable)
const SIMD = 0xfd;
// i32.const takes a signed LEB128: 0x5c (92) needs two bytes (0xdc 0x00), 0x20 and 0x22 one.
const i32 = (n: number) => (n < 0x40 ? [0x41, n] : [0x41, (n & 0x7f) | 0x80, n >> 7]);
// prettier-ignore
const body = [
  0x03, // 3 local entries
  0x01, 0x7b, // 1 x v128
  0x01, 0x7f, // 1 x i32 ($mask)
  0x01, 0x7f, // 1 x i32 ($c)
  0x02, 0x40, // block $bytes
  0x03, 0x40, // loop $blocks
  0x20, 0x00, ...i32(16), 0x6a, 0x20, 0x01, 0x4b, 0x0d, 0x01, // br_if $bytes (i + 16 > n)
  0x20, 0x00, SIMD, 0x00, 0x00, 0x00, 0x21, 0x02, // v = v128.load align=1 offset=0
  0x20, 0x02, ...i32(0x20), SIMD, 0x0f, SIMD, 0x26, // v <u splat(0x20)
  0x20, 0x02, ...i32(0x22), SIMD, 0x0f, SIMD, 0x23, // v == splat(0x22)
  0x20, 0x02, ...i32(0x5c), SIMD, 0x0f, SIMD, 0x23, // v == splat(0x5c)
  SIMD, 0x50, SIMD, 0x50, // or, or
  SIMD, 0x64, 0x22, 0x03, // mask = bitmask (tee)
  0x04, 0x40, 0x20, 0x00, 0x20, 0x03, 0x68, 0x6a, 0x0f, 0x0b, // if mask: return i + ctz(mask)
  0x20, 0x00, ...i32(16), 0x6a, 0x21, 0x00, // i += 16
  0x0c, 0x00, // br $blocks
  0x0b, // end loop
  0x0b, // end block
  0x03, 0x40, // loop $tail
  0x20, 0x00, 0x20, 0x01, 0x4f, 0x04, 0x40, 0x20, 0x01, 0x0f, 0x0b, // if i >= n: return n
  0x20, 0x00, 0x2d, 0x00, 0x00, 0x21, 0x04, // c = i32.load8_u
  0x20, 0x04, ...i32(0x20), 0x49, // c <u 0x20
  0x20, 0x04, ...i32(0x22), 0x46, // c == 0x22
  0x20, 0x04, ...i32(0x5c), 0x46, // c == 0x5c
  0x72, 0x72, // or, or
  0x04, 0x40, 0x20, 0x00, 0x0f, 0x0b, // if: return i
  0x20, 0x00, ...i32(1), 0x6a, 0x21, 0x00, // i += 1
  0x0c, 0x00, // br $tail
  0x0b, // end loop
  0x00, // unreachable
  0x0b, // end func
];
const section = (id: number, bytes: number[]) => [id, ...leb(bytes.length), ...bytes];
function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}
const name = (s: string) => [s.length, ...Buffer.from(s, 'latin1')];
// prettier-ignore
const MODULE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // \0asm, version 1
  ...section(1, [0x01, 0x60, 0x02, 0x7f, 0x7f, 0x01, 0x7f]), // type 0: (i32, i32) -> i32
  ...section(3, [0x01, 0x00]), // function 0 has type 0
  ...section(5, [0x01, 0x00, 0x01]), // one memory, min 1 page, no max
  ...section(7, [0x02, ...name('m'), 0x02, 0x00, ...name('stop'), 0x00, 0x00]), // exports
  ...section(10, [0x01, ...leb(body.length), ...body]), // code
]);

// The few WebAssembly names used here (the project's TypeScript libs do not declare them).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
declare const WebAssembly: {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: Record<string, unknown> };
};

interface Stops {
  memory: WasmMemory;
  stop: (from: number, end: number) => number;
  bytes: Uint8Array;
}

function instantiate(): Stops | undefined {
  try {
    if (!WebAssembly.validate(MODULE)) return undefined;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(MODULE));
    const memory = instance.exports.m as WasmMemory;
    const stop = instance.exports.stop as (from: number, end: number) => number;
    return { memory, stop, bytes: new Uint8Array(memory.buffer) };
  } catch {
    return undefined; // no WebAssembly, or no SIMD: the JavaScript path
  }
}

let stops: Stops | undefined | null = null;

/**
 * Copies `b[0, n)` into the module's memory and returns a function giving
 * the first stop at or after a position below n (n when none), or undefined
 * when this body keeps the JavaScript path (too large, or no SIMD). The
 * function is valid until the next call (one memory for every scan; scans
 * are synchronous).
 */
export function loadForStops(b: Uint8Array, n: number): ((from: number) => number) | undefined {
  if (n > MAX_BYTES) return undefined;
  if (stops === null) stops = instantiate();
  const s = stops;
  if (!s) return undefined;
  if (s.bytes.length < n) {
    s.memory.grow(Math.ceil((n - s.bytes.length) / PAGE));
    s.bytes = new Uint8Array(s.memory.buffer); // growing detached the old view
  }
  s.bytes.set(b.subarray(0, n));
  const stop = s.stop;
  return (from) => stop(from, n);
}

/** Whether the WebAssembly path is available here (tests). */
export function stopsAvailable(): boolean {
  if (stops === null) stops = instantiate();
  return stops !== undefined;
}
