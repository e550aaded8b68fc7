import { describe, expect, it } from 'vitest';
import { responseModelRestorer, rewrittenRequestBody } from '../../../src/flow/rewrite-body.js';

describe('rewrittenRequestBody', () => {
  it('replaces model and keeps every other field in order', () => {
    const out = rewrittenRequestBody(
      { messages: [{ role: 'user', content: 'é' }], model: 'm', stream: true },
      'm-v2',
    );
    expect(out.toString()).toBe('{"messages":[{"role":"user","content":"é"}],"model":"m-v2","stream":true}');
  });
});

describe('responseModelRestorer', () => {
  it('puts the asked-for name back, both spellings, every occurrence', () => {
    const restore = responseModelRestorer('m-v2', 'm');
    const sse = Buffer.from(
      'data: {"id":"1","model":"m-v2","choices":[]}\n\ndata: {"id":"2","model": "m-v2"}\n\ndata: [DONE]\n\n',
    );
    expect(restore(sse).toString()).toBe(
      'data: {"id":"1","model":"m","choices":[]}\n\ndata: {"id":"2","model": "m"}\n\ndata: [DONE]\n\n',
    );
  });

  it('leaves other text, other models and split UTF-8 bytes alone', () => {
    const restore = responseModelRestorer('m-v2', 'm');
    const e = Buffer.from('é');
    const chunk = Buffer.concat([Buffer.from('{"model":"m-v20","x":"'), e.subarray(0, 1)]);
    expect(restore(chunk).equals(chunk)).toBe(true);
    const same = responseModelRestorer('m', 'm');
    const b = Buffer.from('{"model":"m"}');
    expect(same(b)).toBe(b);
  });
});
