import { describe, expect, it } from 'vitest';
import {
  apiTypeOfPath,
  openAIErrorBody,
  parseOpenAIRequest,
  RequestError,
} from '../../../src/request/openai.js';
import { renderChat } from '../../../src/request/chat-template.js';
import { estimateTokens, tokenizeSimple } from '../../../src/request/tokens.js';

const parse = (path: string, body: unknown) =>
  parseOpenAIRequest(path, typeof body === 'string' ? body : JSON.stringify(body), {}, 'rid');

function expectError(fn: () => unknown, status: number, fragment: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(RequestError);
    expect((e as RequestError).status).toBe(status);
    expect((e as RequestError).message).toContain(fragment);
    return;
  }
  throw new Error('expected a RequestError');
}

describe('parseOpenAIRequest', () => {
  it('parses a chat request with string and array content', () => {
    const { request } = parse('/v1/chat/completions', {
      model: 'm',
      stream: true,
      messages: [
        { role: 'system', content: 'be brief' },
        {
          role: 'user',
          content: [
            { type: 'text', text: 'hello ' },
            { type: 'image_url', image_url: {} },
            { type: 'text', text: 'world' },
          ],
        },
      ],
    });
    expect(request.apiType).toBe('chat');
    expect(request.stream).toBe(true);
    expect(request.messages).toEqual([
      { role: 'system', content: 'be brief' },
      { role: 'user', content: 'hello world' },
    ]);
    expect(request.promptText).toBe(renderChat(request.messages!));
    expect(request.promptTokens).toBe(Math.ceil(Buffer.byteLength(request.promptText) / 4));
  });

  it('parses completions with a string, a list of strings, and token ids', () => {
    expect(parse('/v1/completions', { model: 'm', prompt: 'abcdefgh' }).request.promptTokens).toBe(2);
    expect(parse('/v1/completions', { model: 'm', prompt: ['ab', 'cd'] }).request.promptText).toBe('abcd');
    const tok = parse('/v1/completions', { model: 'm', prompt: [1, 2, 3] }).request;
    expect(tok.tokenIds).toEqual([1, 2, 3]);
    expect(tok.promptTokens).toBe(3);
  });

  it('treats unknown paths as completions, as GIE does', () => {
    expect(apiTypeOfPath('/whatever?x=1')).toBe('completions');
    expect(apiTypeOfPath('/v1/chat/completions?x=1')).toBe('chat');
  });

  it('rejects bad input with 400 and a message naming the field', () => {
    expectError(() => parse('/v1/completions', '{"model":'), 400, 'not valid JSON');
    expectError(() => parse('/v1/completions', '[1]'), 400, 'JSON object');
    expectError(() => parse('/v1/completions', { prompt: 'x' }), 400, 'model');
    expectError(() => parse('/v1/completions', { model: 3, prompt: 'x' }), 400, 'model');
    expectError(() => parse('/v1/completions', { model: 'm', prompt: '' }), 400, 'prompt');
    expectError(() => parse('/v1/completions', { model: 'm', prompt: [1, 'a'] }), 400, 'prompt');
    expectError(() => parse('/v1/completions', { model: 'm', prompt: 'x', stream: 'yes' }), 400, 'stream');
    expectError(() => parse('/v1/chat/completions', { model: 'm', messages: [] }), 400, 'messages');
    expectError(
      () => parse('/v1/chat/completions', { model: 'm', messages: [{ content: 'x' }] }),
      400,
      'role',
    );
    expectError(
      () => parse('/v1/chat/completions', { model: 'm', messages: [{ role: 'u', content: 5 }] }),
      400,
      'content',
    );
  });

  it('renders OpenAI-style error bodies', () => {
    expect(JSON.parse(openAIErrorBody(400, 'bad', 'model'))).toEqual({
      error: { message: 'bad', type: 'invalid_request_error', param: 'model', code: 400 },
    });
    expect(JSON.parse(openAIErrorBody(503, 'none')).error.type).toBe('server_error');
  });
});

describe('simple tokenizer', () => {
  it('makes one token of every 4 UTF-8 bytes, padding the last', () => {
    const ids = tokenizeSimple('abcdé');
    expect(ids.length).toBe(2); // 'abcd' + 'é' (2 bytes, zero padded)
    expect(ids[0]).toBe(Buffer.from('abcd').readUInt32LE(0));
    expect(ids[1]).toBe(Buffer.from([0xc3, 0xa9, 0, 0]).readUInt32LE(0));
    expect(estimateTokens('abcdé')).toBe(2);
  });
});
