// Property: on the ext_proc path, the one-pass byte reader
// (readOpenAIRequest -> openai-scan.ts) gives every body the answer the full
// parse (parseOpenAIRequest) gives: the same LLMRequest fields, or the same
// RequestError (status, message, param). Bodies are generated valid, then
// mutated as text and as bytes (truncation, bad UTF-8, escapes, whitespace,
// duplicate keys), so both the reader's answers and its fall-backs are hit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseOpenAIRequest, readOpenAIRequest, RequestError } from '../../src/request/openai.js';
import { scanOpenAIRequest } from '../../src/request/openai-scan.js';
import { checkJsonShape } from '../../src/request/json-scan.js';
import { weirdScalar, yamlDoc } from './arbitraries.js';

const RUN = { numRuns: 1000, interruptAfterTimeLimit: 8_000, markInterruptAsFailure: false } as const;
const HEADERS = { 'x-a': 'b' };

type Outcome = { error: [number, string, string | undefined] } | { ok: Record<string, unknown> };

function summary(path: string, body: Buffer, fast: boolean): Outcome {
  try {
    const r = fast
      ? readOpenAIRequest(path, body, HEADERS, 'rid')
      : (() => {
          const p = parseOpenAIRequest(path, body, HEADERS, 'rid', true);
          return { request: p.request, json: () => p.body };
        })();
    const q = r.request;
    if (q.promptUtf8) {
      // The bytes hashing reads are the text's UTF-8 (any head of it), zero-padded to whole words.
      const utf8 = Buffer.from(q.promptText, 'utf8');
      expect(q.promptUtf8.length).toBe(utf8.length);
      for (const n of [5, 64, utf8.length]) {
        const h = q.promptUtf8.head(n);
        expect(Buffer.from(h.bytes).equals(utf8.subarray(0, n))).toBe(true);
        expect(h.words.length).toBe(Math.ceil(h.bytes.length / 4));
        const tail = h.bytes.length % 4;
        if (tail) expect(h.words[h.words.length - 1]! >>> (8 * tail)).toBe(0);
      }
    }
    return {
      ok: {
        model: q.model,
        apiType: q.apiType,
        stream: q.stream,
        promptText: q.promptText,
        promptTokens: q.promptTokens,
        messages: q.messages,
        tokenIds: q.tokenIds,
        requestId: q.requestId,
        headers: q.headers,
        json: r.json(),
      },
    };
  } catch (e) {
    if (!(e instanceof RequestError)) throw e;
    return { error: [e.status, e.message, e.param] };
  }
}

/** Both readers agree on `body`; returns whether the fast reader answered it itself. */
function agree(path: string, body: Buffer): boolean {
  try {
    checkJsonShape(body);
  } catch {
    return false; // refused by the BodyBuffer before either reader sees it
  }
  expect(summary(path, body, true)).toEqual(summary(path, body, false));
  return (
    scanOpenAIRequest(
      path.endsWith('/chat/completions') ? 'chat' : 'completions',
      body,
      HEADERS,
      'r',
      1024,
    ) !== undefined
  );
}

const anyJson = fc.oneof(weirdScalar, yamlDoc(3));
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    'a\nb',
    'tab\there',
    'q"uote',
    'back\\slash',
    '\u2028',
    '😀',
    'é',
    '\ud83d\ude00',
    '\ud800',
    '\udc00',
    'a\udbffb',
    '\ud800\ud800\udc00',
    '\u0000',
  ),
);
const part = fc.oneof(
  fc.record({ type: fc.constant('text'), text }),
  fc.record({ type: fc.constant('text'), text }),
  fc.record(
    { type: fc.constantFrom('image_url', 'text', 'input_audio'), text: anyJson },
    { requiredKeys: ['type'] },
  ),
  fc.record({ type: anyJson, image_url: fc.record({ url: text }) }),
  anyJson,
);
// Mostly well-formed, so that bodies the reader answers itself are common; some of anything.
const message = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({ role: fc.constantFrom('user', 'system', 'assistant', 'tool'), content: text }),
  },
  { weight: 1, arbitrary: fc.record({ role: fc.constant(''), content: text }) },
  {
    weight: 3,
    arbitrary: fc.record({
      role: fc.constantFrom('user', 'assistant'),
      content: fc.array(part, { maxLength: 4 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record(
      { role: fc.oneof(text, anyJson), content: fc.oneof(text, anyJson, fc.constant(null)), name: text },
      { requiredKeys: [] },
    ),
  },
  { weight: 1, arbitrary: anyJson },
);
const chatBody = fc.record(
  {
    model: fc.oneof(
      { weight: 5, arbitrary: fc.constantFrom('m', 'meta/llama-3', 'é-model', 'm\u0000"') },
      { weight: 1, arbitrary: fc.oneof(text, anyJson) },
    ),
    messages: fc.oneof(
      { weight: 6, arbitrary: fc.array(message, { minLength: 1, maxLength: 5 }) },
      { weight: 1, arbitrary: anyJson },
    ),
    stream: fc.oneof(fc.boolean(), fc.constant(null), anyJson),
    max_tokens: fc.oneof(fc.integer(), anyJson),
    tools: anyJson,
  },
  { requiredKeys: ['model', 'messages'] },
);
const promptValue = fc.oneof(
  text,
  fc.array(text, { maxLength: 4 }),
  fc.array(fc.oneof(fc.nat(), fc.constant(0)), { maxLength: 20 }),
  fc.array(fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 40), fc.constant(2 ** 60), text), {
    maxLength: 6,
  }),
  anyJson,
);
const completionBody = fc.record(
  {
    model: fc.oneof(fc.constant('m'), text, anyJson),
    prompt: promptValue,
    stream: fc.oneof(fc.boolean(), anyJson),
  },
  { requiredKeys: [] },
);

/** JSON text as a client might write it: compact, indented, or with \u escapes for non-ASCII. */
const serialised = (doc: unknown) =>
  fc.constantFrom(0, 1, 2).map((style) => {
    const t = JSON.stringify(doc, null, style === 1 ? 2 : undefined) ?? 'null';
    return style === 2
      ? t.replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
      : t;
  });

const mutation = fc.oneof(
  fc.constant((b: Buffer) => b),
  fc.constant((b: Buffer) => b),
  fc.constant((b: Buffer) => b),
  fc.nat().map((n) => (b: Buffer) => b.subarray(0, b.length === 0 ? 0 : n % b.length)),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })).map(([n, v]) => (b: Buffer) => {
    const c = Buffer.from(b);
    if (c.length > 0) c[n % c.length] = v;
    return c;
  }),
  fc
    .tuple(
      fc.nat(),
      fc.constantFrom(' ', '\t', '\n', ',', '"', '\\', '}', ']', '\\u00e9', '\\ud800', '\x01', '\xff'),
    )
    .map(([n, s]) => (b: Buffer) => {
      const at = b.length === 0 ? 0 : n % b.length;
      return Buffer.concat([
        b.subarray(0, at),
        Buffer.from(s, s === '\xff' ? 'latin1' : 'utf8'),
        b.subarray(at),
      ]);
    }),
);

describe('one-pass request reader agrees with the full parse', () => {
  it('chat bodies, mutated', () => {
    fc.assert(
      fc.property(
        chatBody.chain(serialised),
        mutation,
        (t, m) => void agree('/v1/chat/completions', m(Buffer.from(t))),
      ),
      RUN,
    );
  });

  it('chat bodies past 4 KiB (most mutations inside one long string), mutated', () => {
    // A long first message puts most bytes, and so most mutations, inside one string.
    const long = fc
      .tuple(fc.integer({ min: 4096, max: 12_000 }), fc.constantFrom('a', 'é', 'lorem ipsum "q" \\ '))
      .map(([n, unit]) => unit.repeat(Math.ceil(n / unit.length)));
    fc.assert(
      fc.property(
        fc
          .tuple(chatBody, long)
          .map(([doc, content]) =>
            typeof doc === 'object' && doc !== null && Array.isArray((doc as { messages?: unknown }).messages)
              ? {
                  ...doc,
                  messages: [{ role: 'system', content }, ...(doc as { messages: unknown[] }).messages],
                }
              : { model: 'm', messages: [{ role: 'system', content }], doc },
          )
          .chain(serialised),
        mutation,
        (t, m) => void agree('/v1/chat/completions', m(Buffer.from(t))),
      ),
      { ...RUN, numRuns: 150 },
    );
  });

  it('completion bodies (string, list and token prompts), mutated', () => {
    fc.assert(
      fc.property(
        completionBody.chain(serialised),
        mutation,
        fc.constantFrom('/v1/completions', '/', '/v1/embeddings'),
        (t, m, p) => void agree(p, m(Buffer.from(t))),
      ),
      RUN,
    );
  });

  it('arbitrary bytes and arbitrary JSON', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('/v1/chat/completions', '/v1/completions'),
        fc.oneof(
          fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
          anyJson.map((d) => Buffer.from(JSON.stringify(d) ?? 'null')),
        ),
        (p, b) => void agree(p, b),
      ),
      RUN,
    );
  });

  it('answers well-formed bodies itself (the fast path is taken, not only fallen back from)', () => {
    let answered = 0;
    fc.assert(
      fc.property(
        fc.array(fc.record({ role: fc.constantFrom('user', 'system'), content: text }), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.boolean(),
        (messages, stream) => {
          if (
            agree(
              '/v1/chat/completions',
              Buffer.from(JSON.stringify({ model: 'm', messages, stream, max_tokens: 8 })),
            )
          )
            answered++;
        },
      ),
      { numRuns: 200 },
    );
    // Only lone surrogates in the generated text send a well-formed body to the full parse.
    expect(answered).toBeGreaterThan(150);
  });
});
