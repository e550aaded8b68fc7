// Which model names may become Prometheus label values. A client's `model`
// string is never a label by itself: 6,000 invented names made a 94 MB
// /metrics, 20,000 made every scrape fail. A name becomes a label once the
// pool has served it (a model server answered it with a 2xx, so it is a
// model the pool really runs) or when it was configured; at most `max`
// names, first come first kept. Everything else is counted under `other`.
// With a configured list and `learn` off (`--model-labels`), only the listed
// names are labels: a model server that answers 2xx to any name cannot fill
// the slots.
export const OTHER_MODEL = 'other';

export class ModelLabels {
  private readonly known = new Set<string>();
  /** Per raw name with requests running: the label its running-gauge increments used. */
  private readonly running = new Map<string, { label: string; n: number }>();

  constructor(
    configured: readonly string[] = [],
    private readonly max = 100,
    private readonly learn = true,
  ) {
    for (const m of configured) this.add(m);
  }

  /** The label for `model` now (`other` unless known). */
  of(model: string): string {
    return this.known.has(model) ? model : OTHER_MODEL;
  }

  /** A model server served `model`: it may become a label from now on (up to `max`). */
  admit(model: string): void {
    if (this.learn) this.add(model);
  }

  private add(model: string): void {
    if (model !== '' && this.known.size < this.max) this.known.add(model);
  }

  get size(): number {
    return this.known.size;
  }

  /**
   * The label of a request that starts running. Sticky while requests of
   * that name run, so a gauge is decremented under the label it was
   * incremented under even if the name became known meanwhile. The map holds
   * only names with requests running, so it is bounded by open streams.
   */
  started(model: string): string {
    const e = this.running.get(model);
    if (e) {
      e.n++;
      return e.label;
    }
    const label = this.of(model);
    this.running.set(model, { label, n: 1 });
    return label;
  }

  /** The label `started` gave; undefined when no request of that name was running. */
  ended(model: string): string | undefined {
    const e = this.running.get(model);
    if (!e) return undefined;
    if (--e.n === 0) this.running.delete(model);
    return e.label;
  }
}
