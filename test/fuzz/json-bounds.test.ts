// The JSON shape scan (src/request/json-scan.ts) and the chunk collector
// (src/request/body-buffer.ts) under fast-check: nesting of any depth with
// brackets, quotes and backslashes inside strings, bodies split at any
// offsets (UTF-8 characters included), and 1-byte chunking.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BodyBuffer, BORROW_MIN_BYTES } from '../../src/request/body-buffer.js';
import { RequestError } from '../../src/request/errors.js';
import { checkJsonShape, DEFAULT_JSON_BOUNDS, JsonShapeScanner } from '../../src/request/json-scan.js';
import { parseOpenAIRequest } from '../../src/request/openai.js';

const RUN = { numRuns: 300, interruptAfterTimeLimit: 5_000, markInterruptAsFailure: false } as const;

/** Nesting depth of a parsed JSON value, as the scanner counts it (scalars are 0). */
function depthOf(v: unknown): number {
  if (Array.isArray(v)) return 1 + v.reduce<number>((m, x) => Math.max(m, depthOf(x)), 0);
  if (v !== null && typeof v === 'object')
    return 1 + Object.values(v).reduce<number>((m, x) => Math.max(m, depthOf(x)), 0);
  return 0;
}

/** Strings that look like structure: brackets, quotes, escapes, multi-byte text. */
const trickyString = fc.stringMatching(/^[[\]{}"\\,:a\u00fc\u20ac\u{1F600}]{0,12}$/u);
const jsonValue = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    trickyString,
    fc.integer(),
    fc.constant(null),
    fc.array(tie('v'), { maxLength: 4 }),
    fc.dictionary(trickyString, tie('v'), { maxKeys: 4 }),
  ),
})).v;

/** Splits bytes at random offsets. */
function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

function nested(depth: number, open: string, close: string, inner = '0'): string {
  return open.repeat(depth) + inner + close.repeat(depth);
}

describe('JsonShapeScanner', () => {
  it('measures the depth JSON.parse sees, whatever the strings hold and however the text is split', () => {
    fc.assert(
      fc.property(jsonValue, fc.array(fc.nat(), { maxLength: 6 }), (v, cuts) => {
        const text = Buffer.from(JSON.stringify(v));
        const scan = new JsonShapeScanner({ maxDepth: 1000, baseContainers: 1e9, containersPerByte: 0 });
        for (const c of splitAt(text, cuts)) scan.push(c);
        scan.finish();
        expect(scan.maxDepthSeen).toBe(depthOf(v));
        // Text and bytes give the same answer.
        const asText = new JsonShapeScanner({ maxDepth: 1000, baseContainers: 1e9, containersPerByte: 0 });
        asText.push(text.toString('utf8'));
        expect(asText.maxDepthSeen).toBe(depthOf(v));
      }),
      RUN,
    );
  });

  it('refuses nesting past the bound with a 400, at the chunk that goes too deep', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 400 }),
        fc.constantFrom(['[', ']'], ['{"a":', '}'], ['[{"k":', '}]']),
        fc.array(fc.nat(), { maxLength: 6 }),
        (depth, [open, close], cuts) => {
          const text = Buffer.from(nested(depth, open!, close!));
          const bounds = { ...DEFAULT_JSON_BOUNDS, maxDepth: 64 };
          const real = depthOf(JSON.parse(text.toString()));
          const chunks = splitAt(text, cuts);
          const scan = new JsonShapeScanner(bounds);
          let refusedAt = -1;
          let seen = 0;
          try {
            for (const c of chunks) {
              seen += c.length;
              scan.push(c);
            }
            scan.finish();
          } catch (e) {
            expect(e).toBeInstanceOf(RequestError);
            expect((e as RequestError).status).toBe(400);
            refusedAt = seen;
          }
          if (real <= 64) {
            expect(refusedAt).toBe(-1);
            return;
          }
          // Refused in the chunk holding the 65th opener, not after the whole body.
          let level = 0;
          let p = 0;
          for (; p < text.length; p++) {
            const ch = text[p];
            if ((ch === 0x5b || ch === 0x7b) && ++level > 64) break;
          }
          let end = 0;
          for (const c of chunks) {
            end += c.length;
            if (end > p) break;
          }
          expect(refusedAt).toBe(end);
        },
      ),
      RUN,
    );
  });

  it('does not count brackets inside strings, escaped quotes included', () => {
    const deepInString = JSON.stringify({ model: 'm', prompt: `\\"${'['.repeat(100_000)}\\\\` });
    expect(() => checkJsonShape(deepInString)).not.toThrow();
    // A backslash escaping the closing quote keeps the scanner in the string.
    expect(() => checkJsonShape(`{"a":"\\\\"}${'['.repeat(200)}`)).toThrow(/deeper than 128/);
  });

  it('refuses a body of tiny containers (parse memory ~ 20x its size), accepts container-rich real chats', () => {
    const flood = `[${'[],'.repeat(400_000)}0]`;
    expect(() => checkJsonShape(flood)).toThrow(/arrays and objects/);
    const chat = JSON.stringify({
      model: 'm',
      messages: Array.from({ length: 20_000 }, (_, i) => ({
        role: i % 2 ? 'user' : 'assistant',
        content: [{ type: 'text', text: 'ok' }],
      })),
    });
    expect(() => checkJsonShape(chat)).not.toThrow();
  });

  it('parseOpenAIRequest answers a 200k-deep body with a 400 naming the bound', () => {
    for (const body of [nested(200_000, '[', ']'), `{"model":"m","prompt":${nested(200_000, '[', ']')}}`]) {
      expect(() => parseOpenAIRequest('/v1/completions', body, {}, 'r')).toThrow(/nests deeper than 128/);
    }
  });
});

describe('BodyBuffer', () => {
  it('holds exactly the bytes sent, however they were chunked', () => {
    fc.assert(
      fc.property(jsonValue, fc.array(fc.nat(), { maxLength: 20 }), (v, cuts) => {
        const text = Buffer.from(JSON.stringify(v));
        const b = new BodyBuffer({ maxBytes: 1 << 20, json: false });
        for (const c of splitAt(text, cuts)) b.append(c);
        expect(Buffer.compare(b.finish(), text)).toBe(0);
      }),
      RUN,
    );
  });

  it('borrowing chunks: exactly the bytes sent however chunked, large chunks kept, one in one out', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 9000 }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 0, max: 255 }),
        (sizes, seed) => {
          const parts = sizes.map((n, i) => Buffer.alloc(n, (seed + i) % 256));
          const b = new BodyBuffer({ maxBytes: 1 << 20, json: false, borrowChunks: true });
          for (const p of parts) b.append(p);
          const out = b.finish();
          expect(Buffer.compare(out, Buffer.concat(parts))).toBe(0);
          if (parts.length === 1 && parts[0]!.length >= BORROW_MIN_BYTES) expect(out).toBe(parts[0]);
        },
      ),
      RUN,
    );
    // Many 1-byte chunks are coalesced (copied), and still refused at the chunk bound.
    const small = new BodyBuffer({ maxBytes: 1 << 20, json: false, borrowChunks: true });
    let refused: RequestError | undefined;
    for (let i = 0; i < 20_000 && !refused; i++) {
      try {
        small.append(Buffer.from('a'));
      } catch (e) {
        refused = e as RequestError;
      }
    }
    expect(refused?.status).toBe(413);
    expect(small.finish().length).toBe(16_384);
  });

  it('copies chunks instead of keeping them, and bounds the chunk count', () => {
    const source = Buffer.alloc(64 * 1024, 0x20);
    const b = new BodyBuffer({ maxBytes: 1 << 20, json: false });
    b.append(source.subarray(0, 10));
    source.fill(0x41, 0, 10); // the caller's buffer changes afterwards: ours must not
    expect(b.finish().toString()).toBe(' '.repeat(10));

    // 1-byte chunks: refused with a 413 at the chunk bound (1 MiB / 64 = 16,384 chunks).
    const small = new BodyBuffer({ maxBytes: 1 << 20, json: false });
    const one = Buffer.from(' ');
    let refused: RequestError | undefined;
    for (let i = 0; i < 20_000 && !refused; i++) {
      try {
        small.append(one);
      } catch (e) {
        refused = e as RequestError;
      }
    }
    expect(refused?.status).toBe(413);
    expect(refused?.message).toMatch(/more than 16384 chunks/);
    expect(small.bytes).toBe(16_384);
  });

  it('refuses more bytes than the limit with a 413 and nesting with a 400 while chunks arrive', () => {
    const b = new BodyBuffer({ maxBytes: 100 });
    expect(() => b.append(Buffer.alloc(101, 0x20))).toThrow(expect.objectContaining({ status: 413 }));
    const d = new BodyBuffer({ maxBytes: 1 << 20 });
    let err: unknown;
    try {
      for (let i = 0; i < 1000; i++) d.append(Buffer.from('['));
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ status: 400 });
    expect(d.bytes).toBe(128); // the 129th '[' was refused, nothing after it was kept
  });
});
