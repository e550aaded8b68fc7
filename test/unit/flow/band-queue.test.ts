import { describe, expect, it } from 'vitest';
import { BandQueue, type QueueItem } from '../../../src/flow/band-queue.js';
import type { FlowControlSettings } from '../../../src/config/flow-control.js';

const settings = (over: Partial<FlowControlSettings> = {}): FlowControlSettings => ({
  maxRequests: 0,
  maxBytes: 0,
  requestTtlMs: 1000,
  bands: new Map(),
  defaultBand: { maxRequests: 100, maxBytes: 1e9 },
  ...over,
});

let seq = 0;
const item = (priority: number, bytes = 10, at = seq) => ({ priority, bytes, enqueuedAtMs: at, id: ++seq });

describe('BandQueue', () => {
  it('serves the highest band first, first come first served within a band', () => {
    const q = new BandQueue<QueueItem & { id: number }>(settings());
    const a = item(0, 10, 1);
    const b = item(10, 10, 2);
    const c = item(0, 10, 3);
    const d = item(10, 10, 4);
    for (const x of [a, b, c, d]) expect(q.enqueue(x)).toBe('queued');
    const order: number[] = [];
    for (let x = q.head(); x; x = q.head()) {
      order.push(x.id);
      q.remove(x);
    }
    expect(order).toEqual([b.id, d.id, a.id, c.id]);
    expect(q.length).toBe(0);
    expect(q.totalBytes).toBe(0);
  });

  it('counts what waits ahead of a newcomer: its own band and higher ones', () => {
    const q = new BandQueue(settings());
    q.enqueue(item(10));
    q.enqueue(item(0));
    q.enqueue(item(0));
    q.enqueue(item(-1));
    expect(q.aheadOf(10)).toBe(1);
    expect(q.aheadOf(5)).toBe(1);
    expect(q.aheadOf(0)).toBe(3);
    expect(q.aheadOf(-5)).toBe(4);
  });

  it('refuses past a band bound (requests or bytes) and past the global bounds', () => {
    const q = new BandQueue(
      settings({
        maxRequests: 3,
        maxBytes: 100,
        bands: new Map([[5, { maxRequests: 1, maxBytes: 1e9 }]]),
        defaultBand: { maxRequests: 10, maxBytes: 50 },
      }),
    );
    expect(q.enqueue(item(5))).toBe('queued');
    expect(q.enqueue(item(5))).toBe('band-full');
    expect(q.enqueue(item(0, 45))).toBe('queued');
    expect(q.enqueue(item(0, 10))).toBe('band-full'); // 55 > the default band's 50 bytes
    expect(q.enqueue(item(1, 60))).toBe('queue-full'); // 10 + 45 + 60 > 100 bytes overall
    expect(q.enqueue(item(1, 5))).toBe('queued');
    expect(q.enqueue(item(2, 1))).toBe('queue-full'); // a fourth request
  });

  it('removes a cancelled item from the middle, once', () => {
    const q = new BandQueue(settings());
    const a = item(0);
    const b = item(0);
    const c = item(0);
    [a, b, c].forEach((x) => q.enqueue(x));
    expect(q.remove(b)).toBe(true);
    expect(q.remove(b)).toBe(false);
    expect([...q.items()]).toEqual([a, c]);
    expect(q.has(b)).toBe(false);
  });

  it('lists what was queued before a cutoff and reports per-band stats', () => {
    const q = new BandQueue(settings({ bands: new Map([[7, { maxRequests: 3, maxBytes: 99 }]]) }));
    q.enqueue(item(0, 10, 100));
    q.enqueue(item(0, 20, 200));
    q.enqueue(item(3, 5, 150));
    expect(q.queuedBefore(150).map((x) => x.enqueuedAtMs)).toEqual([150, 100]);
    expect(q.stats(300)).toEqual([
      { priority: 7, length: 0, bytes: 0, maxRequests: 3, maxBytes: 99, oldestWaitMs: 0 },
      { priority: 3, length: 1, bytes: 5, maxRequests: 100, maxBytes: 1e9, oldestWaitMs: 150 },
      { priority: 0, length: 2, bytes: 30, maxRequests: 100, maxBytes: 1e9, oldestWaitMs: 200 },
    ]);
  });
});
