// The simulator's clock: a binary min-heap of events ordered by virtual
// time, then by insertion order, so equal-time events run in a fixed order
// and a seed reproduces a run exactly.
export interface SimEvent {
  t: number;
  seq: number;
  run: () => void | Promise<void>;
}

export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private seq = 0;
  now = 0;

  get size(): number {
    return this.heap.length;
  }

  at(t: number, run: SimEvent['run']): void {
    if (!(t >= this.now)) throw new Error(`event scheduled in the past (${t} < ${this.now})`);
    const h = this.heap;
    const e: SimEvent = { t, seq: this.seq++, run };
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  after(dt: number, run: SimEvent['run']): void {
    this.at(this.now + dt, run);
  }

  pop(): SimEvent | undefined {
    const h = this.heap;
    const top = h[0];
    if (!top) return undefined;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r]!, h[l]!) ? r : l;
        if (!before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    this.now = top.t;
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
