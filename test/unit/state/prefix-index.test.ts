// The typed-array prefix index against plain Map/Set references: the key
// table under random insert/delete (backward-shift deletion keeps every
// other key findable), and match/record/drop against the former
// Map-of-Sets index with an exact Map-ordered LRU, over more endpoints than
// one bitmap word holds.
import { describe, expect, it } from 'vitest';
import { KeyTable, PrefixIndex } from '../../../src/state/prefix-index.js';
import { rng } from './contract.js';

/** The index as it was written with Maps and Sets (the reference). */
class ReferenceIndex {
  private readonly index = new Map<number, Set<string>>();
  private readonly lru = new Map<string, Map<number, true>>();

  match(keys: readonly number[]): Map<string, number> {
    const out = new Map<string, number>();
    const first = keys.length > 0 ? this.index.get(keys[0]!) : undefined;
    if (!first) return out;
    let alive = [...first];
    let i = 1;
    for (; i < keys.length && alive.length > 0; i++) {
      const holders = this.index.get(keys[i]!);
      if (!holders) break;
      for (const id of alive) if (!holders.has(id)) out.set(id, i);
      alive = alive.filter((id) => holders.has(id));
    }
    for (const id of alive) out.set(id, i);
    return out;
  }

  record(id: string, keys: readonly number[], capacity: number): void {
    let lru = this.lru.get(id);
    if (!lru) this.lru.set(id, (lru = new Map()));
    // Last block first: the prompt's first block ends newest.
    for (const k of [...keys].reverse()) {
      lru.delete(k);
      lru.set(k, true);
      let h = this.index.get(k);
      if (!h) this.index.set(k, (h = new Set()));
      h.add(id);
    }
    while (lru.size > capacity) {
      const oldest = lru.keys().next().value as number;
      lru.delete(oldest);
      this.unindex(oldest, id);
    }
  }

  drop(id: string): void {
    for (const k of this.lru.get(id)?.keys() ?? []) this.unindex(k, id);
    this.lru.delete(id);
  }

  private unindex(k: number, id: string): void {
    const h = this.index.get(k)!;
    h.delete(id);
    if (h.size === 0) this.index.delete(k);
  }
}

describe('KeyTable', () => {
  it('finds every key after random inserts and deletes (collisions on purpose)', () => {
    const random = rng(3);
    const t = new KeyTable();
    const ref = new Map<number, number>();
    // Keys sharing low bits, so runs form and deletions shift them.
    const pool = Array.from({ length: 400 }, (_, i) => (i % 37) + Math.floor(i / 37) * 2 ** 40);
    for (let step = 0; step < 20_000; step++) {
      const k = pool[Math.floor(random() * pool.length)]!;
      if (random() < 0.55) {
        t.set(k, step);
        ref.set(k, step);
      } else {
        expect(t.delete(k)).toBe(ref.delete(k));
      }
      if (step % 97 === 0) for (const p of pool) expect(t.get(p)).toBe(ref.get(p) ?? -1);
    }
    expect(t.size).toBe(ref.size);
  });
});

describe('PrefixIndex', () => {
  it('matches, records, evicts and drops exactly like the Map-of-Sets index', () => {
    const random = rng(11);
    const index = new PrefixIndex();
    const ref = new ReferenceIndex();
    // 70 endpoints: three bitmap words.
    const ids = Array.from({ length: 70 }, (_, i) => `10.0.${i >> 8}.${i & 255}:8000`);
    const prompt = (): number[] => {
      const root = Math.floor(random() * 5);
      const len = 1 + Math.floor(random() * 40);
      const out: number[] = [];
      let h = root;
      for (let i = 0; i < len; i++) {
        h = h * 7 + Math.floor(random() * (i < 10 ? 1 : 3)) + 1;
        out.push(h % 2 ** 53);
      }
      if (random() < 0.1) out.push(out[0]!);
      return out;
    };
    let multi = 0;
    for (let step = 0; step < 6_000; step++) {
      const r = random();
      if (r < 0.5) {
        const id = ids[Math.floor(random() * ids.length)]!;
        const keys = prompt();
        index.record(id, Float64Array.from(keys), 60);
        ref.record(id, keys, 60);
      } else if (r < 0.97) {
        const keys = prompt();
        const want = ref.match(keys);
        expect(index.match(Float64Array.from(keys)), `step ${step}`).toEqual(want);
        if (new Set(want.values()).size > 1) multi++;
      } else {
        const id = ids[Math.floor(random() * ids.length)]!;
        index.drop(id);
        ref.drop(id);
      }
    }
    expect(multi).toBeGreaterThan(100);
  });

  it('an empty prompt or an unknown first block matches nothing', () => {
    const index = new PrefixIndex();
    index.record('a', [1, 2, 3], 10);
    expect(index.match([])).toEqual(new Map());
    expect(index.match([9, 1, 2])).toEqual(new Map());
    expect(index.match([1, 2, 9, 3])).toEqual(new Map([['a', 2]]));
  });
});
