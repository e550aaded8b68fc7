import { describe, expect, test } from 'vitest';
import { UsageTracker, usageOf } from '../../../src/extproc/usage.js';

describe('usage', () => {
  test('JSON answer split across chunks (and mid-character)', () => {
    const body = Buffer.from(
      JSON.stringify({
        object: 'chat.completion',
        choices: [{ message: { content: 'héllo' } }],
        usage: {
          prompt_tokens: 12,
          completion_tokens: 3,
          total_tokens: 15,
          prompt_tokens_details: { cached_tokens: 8 },
        },
      }),
    );
    const t = new UsageTracker(false);
    const cut = body.indexOf(Buffer.from('é')) + 1;
    t.push(body.subarray(0, cut));
    t.push(body.subarray(cut));
    expect(t.finish()).toEqual({ promptTokens: 12, completionTokens: 3, totalTokens: 15, cachedTokens: 8 });
  });

  test('SSE: usage in the last data event, lines split across chunks, [DONE] skipped', () => {
    const t = new UsageTracker(true);
    for (const c of [
      'data: {"choices":[{"delta":{}}],"usage":null}\n',
      '\ndata: {"choices":[],"usa',
      'ge":{"prompt_tokens":2,"completion_tokens":9}}\r\n\r\ndata: [DONE]\n\n',
    ]) {
      t.push(Buffer.from(c));
    }
    expect(t.finish()).toMatchObject({ promptTokens: 2, completionTokens: 9 });
  });

  test('Responses API shape and GIE spelling of cached tokens', () => {
    expect(
      usageOf({ type: 'response.completed', response: { usage: { input_tokens: 4, output_tokens: 6 } } }),
    ).toMatchObject({
      promptTokens: 4,
      completionTokens: 6,
    });
    expect(usageOf({ usage: { prompt_token_details: { cached_tokens: 1 } } })?.cachedTokens).toBe(1);
  });

  test('non-JSON answer or oversize body: no usage, no throw', () => {
    const t = new UsageTracker(false);
    t.push(Buffer.from('<html>'));
    expect(t.finish()).toBeUndefined();
    const small = new UsageTracker(false, 8);
    small.push(Buffer.from('{"usage":{"prompt_tokens":1}}'));
    expect(small.finish()).toBeUndefined();
  });

  describe('model-server answers are shape-bounded like requests', () => {
    const usage = '"usage":{"prompt_tokens":5,"completion_tokens":1}';
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const flat = (n: number) => `[${Array.from({ length: n }, () => '[]').join(',')}]`;

    test('a JSON answer nested past the depth bound yields no usage (and is not parsed)', () => {
      const t = new UsageTracker(false);
      const body = Buffer.from(`{${usage},"x":${deep(5_000)}}`);
      for (let i = 0; i < body.length; i += 1_000) t.push(body.subarray(i, i + 1_000));
      expect(t.finish()).toBeUndefined();
      // Within the bound the same shape still gives usage.
      const ok = new UsageTracker(false);
      ok.push(Buffer.from(`{${usage},"x":${deep(100)}}`));
      expect(ok.finish()).toMatchObject({ promptTokens: 5 });
    });

    test('a JSON answer of more containers than its size allows yields no usage', () => {
      const t = new UsageTracker(false);
      t.push(Buffer.from(`{${usage},"x":${flat(200_000)}}`));
      expect(t.finish()).toBeUndefined();
    });

    test('an SSE data event nested past the bound is skipped; a later one is read', () => {
      const t = new UsageTracker(true);
      t.push(Buffer.from(`data: {${usage},"x":${deep(5_000)}}\n\n`));
      t.push(Buffer.from('data: {"usage":{"prompt_tokens":7,"completion_tokens":2}}\n\n'));
      expect(t.finish()).toMatchObject({ promptTokens: 7 });
    });

    test('an SSE line longer than the cap is dropped, not kept growing; the next line is read', () => {
      const t = new UsageTracker(true, 64 * 1024);
      t.push(Buffer.from(`data: {${usage},"pad":"`));
      for (let i = 0; i < 20; i++) t.push(Buffer.alloc(8 * 1024, 'a'));
      t.push(Buffer.from('"}\n\ndata: {"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\n'));
      expect(t.finish()).toMatchObject({ promptTokens: 9 });
    });
  });
});
