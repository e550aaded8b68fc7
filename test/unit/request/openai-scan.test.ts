import { describe, expect, it } from 'vitest';
import { scanOpenAIRequest } from '../../../src/request/openai-scan.js';
import { parseOpenAIRequest, readOpenAIRequest, MAX_MODEL_CHARS } from '../../../src/request/openai.js';
import type { LLMRequest } from '../../../src/scheduling/types.js';
import {
  textBlockHashes,
  textBlockKeys,
  textKeysAndDigest,
  utf8BlockHashes,
  utf8BlockKeys,
  utf8KeysAndDigest,
} from '../../../src/request/prefix-hash.js';
import { renderChat } from '../../../src/request/chat-template.js';

const scan = (api: 'chat' | 'completions', text: string) =>
  scanOpenAIRequest(api, Buffer.from(text, 'utf8'), {}, 'rid', MAX_MODEL_CHARS);

describe('scanOpenAIRequest (the one-pass reader)', () => {
  it('reads a chat body: model, stream, rendered prompt bytes, lazy messages', () => {
    const body = {
      model: 'llama',
      temperature: 0.5,
      tools: [{ type: 'function', function: { name: 'f', parameters: { a: [1, 2e3, -0.5, true, null] } } }],
      messages: [
        { role: 'system', content: 'be "brief"\n\ttabs\\ é 😀 \u2028' },
        {
          role: 'user',
          name: 'x',
          content: [
            { type: 'text', text: 'hello ' },
            { type: 'image_url', image_url: { url: 'data:' } },
            { text: 'world' },
          ],
        },
        { role: 'assistant', content: null },
        { role: 'tool' },
      ],
      stream: true,
    };
    const r = scan('chat', JSON.stringify(body, null, 2));
    expect(r).toBeDefined();
    const q = r!.request;
    const slow = parseOpenAIRequest('/v1/chat/completions', JSON.stringify(body), {}, 'rid').request;
    expect(q.model).toBe('llama');
    expect(q.stream).toBe(true);
    expect(q.promptUtf8).toBeDefined();
    expect(Buffer.from(q.promptUtf8!.head(Infinity).bytes).toString('utf8')).toBe(renderChat(slow.messages!));
    expect(q.promptText).toBe(slow.promptText);
    expect(q.promptTokens).toBe(slow.promptTokens);
    expect(q.messages).toEqual(slow.messages);
    expect(r!.json()).toEqual(body);
  });

  it('unescapes \\u escapes and surrogate pairs into UTF-8', () => {
    const text =
      '{"model":"m\\u00e9","messages":[{"role":"u\\u0073er","content":"a\\u00e9\\u20ac\\ud83d\\ude00\\n\\/\\b\\f\\r"}]}';
    const q = scan('chat', text)!.request;
    expect(q.model).toBe('mé');
    expect(q.messages).toEqual([{ role: 'user', content: 'aé€😀\n/\b\f\r' }]);
    expect(Buffer.from(q.promptUtf8!.head(Infinity).bytes).toString('utf8')).toBe(q.promptText);
    expect(q.promptText).toBe(parseOpenAIRequest('/v1/chat/completions', text, {}, 'rid').request.promptText);
  });

  it('reads completions: string, list of strings, token ids', () => {
    const s = scan('completions', '{"prompt":"hello world","model":"m","stream":false}')!.request;
    expect(s.promptText).toBe('hello world');
    expect(s.promptTokens).toBe(3);
    expect(s.stream).toBe(false);
    const l = scan('completions', '{"model":"m","prompt":["ab","c\\"d"]}')!.request;
    expect(l.promptText).toBe('abc"d');
    const t = scan('completions', '{"model":"m","prompt":[1, 0, 123456789012345]}')!.request;
    expect(t.tokenIds).toEqual([1, 0, 123456789012345]);
    expect(t.promptTokens).toBe(3);
    expect(t.promptUtf8).toBeUndefined();
  });

  it('leaves to the full parse whatever it cannot answer exactly', () => {
    const cases: Array<['chat' | 'completions', string]> = [
      ['chat', '{"model":"m","messages":[{"role":"user","content":"x"}],}'], // trailing comma
      ['chat', '{"model":"m","messages":[{"role":"user","content":"x\u0001"}]}'], // raw control character
      ['chat', '{"model":"m","messages":[{"role":"user","content":"\\ud800"}]}'], // lone surrogate
      ['chat', '{"model":"m","messages":[{"role":"user","content":"\\udc00\\udc00"}]}'],
      ['chat', '{"model":"m","messages":[{"role":"user","content":"\\x"}]}'], // bad escape
      ['chat', '{"model":"m","model":"n","messages":[{"role":"user","content":"x"}]}'], // duplicate
      ['chat', '{"mod\\u0065l":"m","messages":[{"role":"user","content":"x"}]}'], // escaped key
      ['chat', '{"model":"m","messages":[]}'],
      ['chat', '{"model":"m","messages":[{"role":"","content":"x"}]}'],
      ['chat', '{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}'],
      ['chat', '{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":1}]}]}'],
      ['chat', '{"model":"m","messages":[{"role":"user","content":5}]}'],
      ['chat', '{"model":"","messages":[{"role":"user","content":"x"}]}'],
      ['chat', '{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}'],
      ['chat', '{"model":"m","messages":[{"role":"user","content":"x"}]} x'],
      ['chat', '\ufeff{"model":"m","messages":[{"role":"user","content":"x"}]}'],
      ['chat', '{"model":"m","messages":[{"role":"user","content":"x"}],"n":01}'],
      ['chat', '{"model":"m","messages":[{"role":"user","content":"x"}],"n":1.}'],
      ['completions', '{"model":"m","prompt":[1.0]}'],
      ['completions', '{"model":"m","prompt":[1e2]}'],
      ['completions', '{"model":"m","prompt":[-1]}'],
      ['completions', '{"model":"m","prompt":[1,"a"]}'],
      ['completions', '{"model":"m","prompt":[1234567890123456]}'],
      ['completions', '{"model":"m","prompt":""}'],
      ['completions', '{"model":"m"}'],
    ];
    for (const [api, text] of cases) expect(scan(api, text), text).toBeUndefined();
    // Invalid UTF-8 decodes to U+FFFD for JSON.parse: only the full parse reads it the same way.
    const bad = Buffer.from('{"model":"m","prompt":"a\xffb"}', 'latin1');
    expect(scanOpenAIRequest('completions', bad, {}, 'r', MAX_MODEL_CHARS)).toBeUndefined();
    expect(readOpenAIRequest('/v1/completions', bad, {}, 'r').request.promptText).toBe('a\ufffdb');
  });

  it('hashes the bytes exactly as the text was hashed', () => {
    // Longer than the 16 KB head that 256 blocks of 16 tokens hash, with escapes across its end.
    const content = 'x'.repeat(15_000) + ' é 😀 \n"\u0001'.repeat(3000);
    const text = JSON.stringify({ model: 'm', messages: [{ role: 'user', content }] });
    const q = scan('chat', text)!.request;
    for (const blocks of [1, 256, 100_000]) {
      expect(utf8BlockHashes(q.promptUtf8!, 'm', 16, blocks)).toEqual(
        textBlockHashes(q.promptText, 'm', 16, blocks),
      );
      // The routing keys (what the director hashes) agree the same way.
      expect(utf8BlockKeys(q.promptUtf8!, 'm', 16, blocks)).toEqual(
        textBlockKeys(q.promptText, 'm', 16, blocks),
      );
    }
    expect(utf8KeysAndDigest(q.promptUtf8!, 'm', 16, 4)).toEqual(textKeysAndDigest(q.promptText, 'm', 16, 4));
    for (const tail of ['a', 'ab', 'abc', 'abcd']) {
      const r = scan('completions', JSON.stringify({ model: 'm', prompt: content + tail }))!.request;
      expect(utf8KeysAndDigest(r.promptUtf8!, 'm', 16, 4)).toEqual(
        textKeysAndDigest(r.promptText, 'm', 16, 4),
      );
    }
  });
});

describe('the transient rendering hashing reads', () => {
  it('gives head’s bytes, shares one scratch between prompts and leaves head and promptText intact', () => {
    const body = (c: string) => JSON.stringify({ model: 'm', messages: [{ role: 'user', content: c }] });
    const a = scan('chat', body('é 😀 "a" '.repeat(5000)))!.request;
    const b = scan('chat', body('b\n'.repeat(9000)))!.request;
    const pa = a.promptUtf8!;
    const pb = b.promptUtf8!;
    const ta = Buffer.from(pa.transientHead!(pa.length).bytes);
    const tb = pb.transientHead!(pb.length);
    // One scratch: the second rendering overwrote the first, so nothing may keep it.
    expect(tb.bytes.buffer).toBe(pa.transientHead!(10).bytes.buffer);
    expect(ta.equals(Buffer.from(pa.head(pa.length).bytes))).toBe(true);
    expect(
      Buffer.from(pb.transientHead!(pb.length).bytes).equals(Buffer.from(pb.head(pb.length).bytes)),
    ).toBe(true);
    // Once head rendered the prompt, the transient view is that rendering (no copy), padded words included.
    const again = pa.transientHead!(pa.length);
    expect(again.bytes).toBe(pa.head(pa.length).bytes);
    expect(again.words.length).toBe(Math.ceil(pa.length / 4));
    const slow = parseOpenAIRequest('/v1/chat/completions', body('é 😀 "a" '.repeat(5000)), {}, 'r').request;
    expect(a.promptText).toBe(slow.promptText);
    expect(utf8KeysAndDigest(pa, 'm', 16, 64)).toEqual(textKeysAndDigest(slow.promptText, 'm', 16, 64));
  });
});

describe('the scanned request as a value', () => {
  it('serialises as the plain LLMRequest shape, without the body', () => {
    const text = '{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}';
    const fast = scan('chat', text)!.request;
    const slow = parseOpenAIRequest('/v1/chat/completions', text, {}, 'rid').request;
    expect(JSON.parse(JSON.stringify(fast))).toEqual(JSON.parse(JSON.stringify(slow)));
  });
});

describe('the messages bytes forwarded to /match_sort', () => {
  it('are exactly the body’s messages array, and the /match_sort body reads as the serialised one', async () => {
    const { matchSortBody } = await import('../../../src/datalayer/cache-indexer-client.js');
    const messages = [
      { role: 'system', content: 'be brief é 😀' },
      { role: 'user', content: [{ type: 'text', text: 'hi "there"\n' }] },
    ];
    const text = ` { "model" : "m", "messages" : ${JSON.stringify(messages, null, 1)} , "stream": true } `;
    const q = scan('chat', text)!.request;
    const raw = q.messagesJson!();
    expect(JSON.parse(Buffer.from(raw).toString('utf8'))).toEqual(messages);
    // The cache-indexer reads the spliced body as the same request as the serialised one.
    const { parseMatchRequest } = await import('../../../src/cacheindexer/match-request.js');
    const flat = (b: ReturnType<typeof matchSortBody>) =>
      typeof b === 'string' ? b : Buffer.concat(b.chunks.map((c) => Buffer.from(c)));
    const spliced = parseMatchRequest(flat(matchSortBody(q, ['a:1'])));
    const plain = parseMatchRequest(
      flat(matchSortBody(JSON.parse(JSON.stringify(q)) as LLMRequest, ['a:1'])),
    );
    expect(spliced).toEqual(plain);
    // Messages replaced (a plugin or a rewrite): the original bytes are no longer offered.
    q.messages = [{ role: 'user', content: 'other' }];
    expect(q.messagesJson).toBeUndefined();
  });
});
