// IdleSweep: the stream idle timeout kept by one periodic sweep. The clock
// is injected and sweeps are run by hand, except where the interval itself
// is under test (fake timers).
import { afterEach, describe, expect, test, vi } from 'vitest';
import { IdleSweep } from '../../../src/extproc/idle-sweep.js';

function clock() {
  let t = 1_000;
  return {
    now: () => t,
    advance(ms: number) {
      t += ms;
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('IdleSweep', () => {
  test('sweeps eight times per timeout', () => {
    expect(new IdleSweep(400).periodMs).toBe(50);
    expect(new IdleSweep(600_000).periodMs).toBe(75_000);
    // A tiny timeout still sweeps at a whole millisecond.
    expect(new IdleSweep(3).periodMs).toBe(1);
  });

  test('a silent stream is ended once, after idleMs and within two sweep periods more', () => {
    const c = clock();
    const sweep = new IdleSweep(400, { now: c.now });
    let expired = 0;
    sweep.watch(() => expired++);
    const opened = c.now();
    const endedAt: number[] = [];
    for (let i = 0; i < 20; i++) {
      c.advance(sweep.periodMs);
      const before = expired;
      sweep.sweep();
      if (expired > before) endedAt.push(c.now() - opened);
    }
    expect(expired).toBe(1);
    expect(endedAt).toHaveLength(1);
    expect(endedAt[0]).toBeGreaterThanOrEqual(400);
    expect(endedAt[0]).toBeLessThanOrEqual(400 + 2 * sweep.periodMs);
    expect(sweep.size).toBe(0);
  });

  test('a stream that hears a message between every two sweeps is never ended', () => {
    const c = clock();
    const sweep = new IdleSweep(400, { now: c.now });
    let expired = 0;
    const w = sweep.watch(() => expired++);
    for (let i = 0; i < 100; i++) {
      c.advance(sweep.periodMs);
      sweep.sweep();
      // One message per 7 periods (350 ms < 400 ms).
      if (i % 7 === 6) w.heard();
    }
    expect(expired).toBe(0);
    expect(sweep.size).toBe(1);
  });

  test('messages at random times: every end comes after idleMs of silence and at most 2 periods past it', () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const c = clock();
    const idleMs = 800;
    const sweep = new IdleSweep(idleMs, { now: c.now });
    const period = sweep.periodMs;
    const streams = Array.from({ length: 40 }, () => {
      const s = { last: c.now(), ended: -1, watch: undefined as unknown as ReturnType<IdleSweep['watch']> };
      s.watch = sweep.watch(() => (s.ended = c.now()));
      return s;
    });
    // Time moves in steps of 10 ms; a sweep every `period`; messages at random, with long gaps.
    let nextSweep = c.now() + period;
    for (let step = 0; step < 2_000; step++) {
      c.advance(10);
      for (const s of streams) {
        if (s.ended < 0 && rand() < 0.012) {
          s.last = c.now();
          s.watch.heard();
        }
      }
      if (c.now() >= nextSweep) {
        sweep.sweep();
        nextSweep += period;
      }
    }
    const ended = streams.filter((s) => s.ended >= 0);
    // Gaps are random: some streams outlived many timeouts, some did not.
    expect(ended.length).toBeGreaterThan(5);
    for (const s of ended) {
      expect(s.ended - s.last).toBeGreaterThanOrEqual(idleMs);
      expect(s.ended - s.last).toBeLessThanOrEqual(idleMs + 2 * period);
    }
    // Whoever is still open heard a message within the last idleMs + 2 periods.
    for (const s of streams.filter((x) => x.ended < 0))
      expect(c.now() - s.last).toBeLessThan(idleMs + 2 * period);
  });

  test('a stream unwatched before a sweep is not ended', () => {
    const c = clock();
    const sweep = new IdleSweep(100, { now: c.now });
    let expired = 0;
    const w = sweep.watch(() => expired++);
    sweep.sweep();
    w.unwatch();
    c.advance(1_000);
    sweep.sweep();
    expect(expired).toBe(0);
    // Unwatching twice, or hearing after, is harmless.
    w.unwatch();
    w.heard();
    expect(sweep.size).toBe(0);
  });

  test('an end that unwatches other streams during a sweep: those are not ended', () => {
    const c = clock();
    const sweep = new IdleSweep(100, { now: c.now });
    const ended: string[] = [];
    const watches = new Map<string, ReturnType<IdleSweep['watch']>>();
    for (const name of ['a', 'b', 'c']) {
      watches.set(
        name,
        sweep.watch(() => {
          ended.push(name);
          // Ending `a` closes the whole connection: its other streams are over too.
          if (name === 'a') for (const [n, w] of watches) if (n !== 'a') w.unwatch();
        }),
      );
    }
    sweep.sweep();
    c.advance(100);
    sweep.sweep();
    expect(ended).toEqual(['a']);
    expect(sweep.size).toBe(0);
  });

  test('an end that unwatches itself (the error handler settling) is safe, and runs once', () => {
    const c = clock();
    const sweep = new IdleSweep(100, { now: c.now });
    let expired = 0;
    const w = sweep.watch(() => {
      expired++;
      w.unwatch();
    });
    const other = sweep.watch(() => undefined);
    sweep.sweep();
    other.heard();
    c.advance(100);
    sweep.sweep();
    other.heard();
    c.advance(100);
    sweep.sweep();
    expect(expired).toBe(1);
    expect(sweep.size).toBe(1);
  });

  test('the interval runs while streams are watched, stops on an empty sweep, and restarts', () => {
    vi.useFakeTimers();
    const sweep = new IdleSweep(400, { now: () => Date.now() });
    expect(sweep.running).toBe(false);
    let expired = 0;
    const w = sweep.watch(() => expired++);
    expect(sweep.running).toBe(true);
    vi.advanceTimersByTime(300);
    w.heard();
    vi.advanceTimersByTime(300);
    expect(expired).toBe(0);
    vi.advanceTimersByTime(500);
    expect(expired).toBe(1);
    // The next sweep finds nothing to watch and stops the interval.
    vi.advanceTimersByTime(sweep.periodMs);
    expect(sweep.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    sweep.watch(() => expired++);
    expect(sweep.running).toBe(true);
    vi.advanceTimersByTime(400 + 2 * sweep.periodMs);
    expect(expired).toBe(2);
    sweep.stop();
    expect(vi.getTimerCount()).toBe(0);
  });
});
