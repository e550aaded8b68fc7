// Property: parseOpenAIRequest turns any body a client can send into either
// an LLMRequest or a RequestError with status 400 (which the EPP answers as
// an OpenAI error) — never another exception, never a 5xx, never a hang.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openAIErrorBody, parseOpenAIRequest, RequestError } from '../../src/request/openai.js';
import { parseMatchRequest } from '../../src/cacheindexer/match-request.js';
import { hostileOpenAIBodies, weirdScalar, yamlDoc } from './arbitraries.js';

const RUN = { numRuns: 500, interruptAfterTimeLimit: 5_000, markInterruptAsFailure: false } as const;
const PATHS = [
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/chat/completions?x=1',
  '/',
  '/v1/embeddings',
  '',
];
// How long one call takes is a figure of `npm run bench -- hostile` (parse
// section), not an assertion here: a real hang still fails on the test timeout.
function outcome(path: string, body: string): 'ok' | 400 {
  try {
    const { request, body: obj } = parseOpenAIRequest(path, body, { 'x-a': 'b' }, 'rid');
    expect(typeof request.model).toBe('string');
    expect(request.model.length).toBeGreaterThan(0);
    expect(Number.isFinite(request.promptTokens) && request.promptTokens >= 0).toBe(true);
    expect(typeof obj).toBe('object');
    return 'ok';
  } catch (e) {
    if (!(e instanceof RequestError)) {
      throw new Error(
        `parseOpenAIRequest threw ${(e as Error)?.name}: ${(e as Error)?.message} on ${path} ${body.slice(0, 500)}`,
      );
    }
    expect(e.status).toBe(400);
    const wire = JSON.parse(openAIErrorBody(e.status, e.message, e.param)) as {
      error: { message: string; code: number; type: string };
    };
    expect(wire.error.code).toBe(400);
    expect(wire.error.type).toBe('invalid_request_error');
    expect(wire.error.message.length).toBeGreaterThan(0);
    return 400;
  }
}

const FIELDS = [
  'model',
  'messages',
  'prompt',
  'stream',
  'max_tokens',
  'stream_options',
  'temperature',
  'n',
  'kv_transfer_params',
];
const anyJson = fc.oneof(weirdScalar, yamlDoc(3));

const validChat = { model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: false, max_tokens: 4 };
const validCompletion = { model: 'm', prompt: 'hello', stream: true };

describe('OpenAI body parsing under fuzzing', () => {
  it('valid bodies parse (baseline)', () => {
    expect(outcome('/v1/chat/completions', JSON.stringify(validChat))).toBe('ok');
    expect(outcome('/v1/completions', JSON.stringify(validCompletion))).toBe('ok');
    expect(outcome('/v1/completions', JSON.stringify({ model: 'm', prompt: [1, 2, 3] }))).toBe('ok');
  });

  it('arbitrary text and arbitrary bytes decoded as UTF-8 (invalid sequences included)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PATHS),
        fc.oneof(
          fc.string({ maxLength: 300 }),
          fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b).toString('utf8')),
        ),
        (path, text) => void outcome(path, text),
      ),
      RUN,
    );
  });

  it('arbitrary JSON documents', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...PATHS),
        anyJson,
        (path, doc) => void outcome(path, JSON.stringify(doc) ?? 'null'),
      ),
      RUN,
    );
  });

  it('every field of a valid chat / completion body replaced by a value of any type', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.constantFrom(...FIELDS), anyJson, (chat, field, value) => {
        const body: Record<string, unknown> = { ...(chat ? validChat : validCompletion), [field]: value };
        outcome(chat ? '/v1/chat/completions' : '/v1/completions', JSON.stringify(body));
      }),
      RUN,
    );
  });

  it('message and content-part fields of any type', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            anyJson,
            fc.record(
              {
                role: anyJson,
                content: fc.oneof(
                  anyJson,
                  fc.array(fc.oneof(anyJson, fc.record({ type: anyJson, text: anyJson })), { maxLength: 4 }),
                ),
              },
              { requiredKeys: [] },
            ),
          ),
          { maxLength: 4 },
        ),
        (messages) => void outcome('/v1/chat/completions', JSON.stringify({ model: 'm', messages })),
      ),
      RUN,
    );
  });

  it('prompt arrays mixing token ids, strings and junk', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.integer(),
            fc.double(),
            fc.string({ maxLength: 8 }),
            fc.constant(null),
            fc.constant(-1),
            fc.constant(2 ** 40),
          ),
          { maxLength: 20 },
        ),
        (prompt) => {
          outcome('/v1/completions', JSON.stringify({ model: 'm', prompt }));
        },
      ),
      RUN,
    );
  });

  it('deep nesting, huge strings and huge arrays are answered (a request or a 400)', () => {
    for (const [, path, body] of hostileOpenAIBodies()) outcome(path, body);
    expect((Object.prototype as Record<string, unknown>).model).toBeUndefined();
  });
});

describe('cache-indexer /match_sort body parsing under fuzzing', () => {
  function matchOutcome(text: string): 'ok' | 400 {
    try {
      const r = parseMatchRequest(text);
      expect(typeof r.model).toBe('string');
      expect(Array.isArray(r.candidates)).toBe(true);
      return 'ok';
    } catch (e) {
      if (!(e instanceof RequestError))
        throw new Error(
          `parseMatchRequest threw ${(e as Error)?.name}: ${(e as Error)?.message} on ${text.slice(0, 300)}`,
        );
      expect(e.status).toBe(400);
      return 400;
    }
  }
  const valid = { model: 'm', prompt: 'hello world', candidates: ['10.0.0.1:8000'] };

  it('every field replaced by a value of any type, and arbitrary text', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('model', 'prompt', 'messages', 'token_ids', 'candidates'),
        anyJson,
        (field, value) => {
          matchOutcome(JSON.stringify({ ...valid, [field]: value }));
        },
      ),
      RUN,
    );
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (t) => void matchOutcome(t)),
      RUN,
    );
  });
});
