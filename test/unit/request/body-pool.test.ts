// Pooled request bodies: reused only after release, never overwritten while lent.
import { describe, expect, test } from 'vitest';
import { BufferPool } from '../../../src/request/body-pool.js';
import { BodyBuffer } from '../../../src/request/body-buffer.js';
import { scanOpenAIRequest } from '../../../src/request/openai-scan.js';

describe('BufferPool', () => {
  test('lends a view of the asked length; the buffer comes back only on release, once', () => {
    const pool = new BufferPool();
    const a = pool.acquire(100_000)!;
    expect(a.bytes.length).toBe(100_000);
    const b = pool.acquire(100_000)!;
    expect(b.bytes.buffer).not.toBe(a.bytes.buffer);
    a.release();
    a.release();
    expect(pool.retained).toBe(1);
    const c = pool.acquire(70_000)!;
    expect(c.bytes.buffer).toBe(a.bytes.buffer);
    expect(pool.retained).toBe(0);
    b.release();
    c.release();
    expect(pool.retained).toBe(2);
  });

  test('bodies above the largest class are not pooled; each class keeps a bounded amount', () => {
    const pool = new BufferPool();
    expect(pool.acquire(5 * 1024 * 1024)).toBeUndefined();
    const lent = Array.from({ length: 5 }, () => pool.acquire(4 * 1024 * 1024)!);
    for (const l of lent) l.release();
    expect(pool.retained).toBe(2); // 8 MiB per class
  });
});

describe('BodyBuffer with a pool', () => {
  const piece = (c: string) => Buffer.alloc(5000, c);

  test('a body of several pieces is joined in a pooled buffer, given back by release', () => {
    const pool = new BufferPool();
    const b = new BodyBuffer({ maxBytes: 1 << 20, borrowChunks: true, pool, json: false });
    b.append(piece('a'));
    b.append(piece('b'));
    const whole = b.finish();
    expect(whole.toString()).toBe('a'.repeat(5000) + 'b'.repeat(5000));
    expect(pool.retained).toBe(0);
    b.release();
    b.release();
    expect(pool.retained).toBe(1);
  });

  test('a body of one piece is the piece itself and takes nothing from the pool', () => {
    const pool = new BufferPool();
    const b = new BodyBuffer({ maxBytes: 1 << 20, borrowChunks: true, pool, json: false });
    const p = piece('a');
    b.append(p);
    expect(b.finish()).toBe(p);
    b.release();
    expect(pool.retained).toBe(0);
  });
});

describe('scanned request after detach', () => {
  const body = Buffer.from(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] }));

  test('parts decoded before stay readable; parts not decoded throw instead of reading a reused buffer', () => {
    const r = scanOpenAIRequest('chat', body, {}, 'rid', 1024)!;
    expect(r.request.promptText).toContain('hello');
    r.detach();
    expect(r.request.promptText).toContain('hello');
    expect(r.request.model).toBe('m');
    expect(() => r.request.messages).toThrow(/released/);
    expect(() => r.request.messagesJson!()).toThrow(/released/);
    expect(() => r.json()).toThrow(/released/);
  });
});
