// Prometheus counters, gauges and histograms whose label sets are resolved
// once, into children the caller keeps. prom-client hashes the label object
// on every call (a string built from every label, then a map lookup): the
// ext_proc path made about a dozen such calls per request, ~14 us of a 2 KB
// request's CPU profile. A child here is the series itself, so an
// observation is a few field updates.
//
// The families register in a prom-client Registry and the registry writes
// the exposition, so the text is prom-client's own: the same values handed
// over in the same shape (histogram buckets cumulative, `le` first, then the
// series' labels; `_sum`, `_count`), series in the order of their first
// observation as prom-client's label map keeps them, and a family without
// labels always exposed, from zero. test/unit/observability/bound-metrics.test.ts
// compares the text against prom-client's metrics fed the same calls.
import type { Metric, Registry } from 'prom-client';

type Labels = Readonly<Record<string, string>>;

interface ExposedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
  sharedLabels?: Labels;
  /** prom-client's JSON form carries the field (null on buckets), exemplars or not. */
  exemplar?: null;
}

interface Exposed {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  values: ExposedValue[];
  aggregator: 'sum';
}

interface Series {
  labels: Labels;
  live: boolean;
}

abstract class Family<C extends Series> {
  readonly aggregator = 'sum' as const;
  /** Children with at least one observation, in the order of their first. */
  protected live: C[] = [];
  private readonly children = new Map<string, C>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The series of these label values (in labelNames order): the same child every time. */
  child(...values: string[]): C {
    if (values.length !== this.labelNames.length)
      throw new Error(`${this.name}: expected labels ${this.labelNames.join(', ')}`);
    const key = JSON.stringify(values);
    let c = this.children.get(key);
    if (!c) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      c = this.create(labels);
      this.children.set(key, c);
      // prom-client exposes a family without labels from the start, at zero.
      if (this.labelNames.length === 0) this.markLive(c);
    }
    return c;
  }

  protected markLive(c: C): void {
    c.live = true;
    this.live.push(c);
  }

  protected abstract create(labels: Labels): C;
  protected abstract zero(c: C): void;

  reset(): void {
    for (const c of this.live) {
      c.live = false;
      this.zero(c);
    }
    this.live = [];
    const unlabelled = this.labelNames.length === 0 ? this.children.get('[]') : undefined;
    if (unlabelled) this.markLive(unlabelled);
  }
}

/** One series of a counter or gauge. */
export class ValueChild implements Series {
  value = 0;
  live = false;
  constructor(
    readonly labels: Labels,
    private readonly family: ValueFamily,
  ) {}

  inc(by = 1): void {
    if (!this.live) this.family.use(this);
    this.value += by;
  }

  /** Gauges only. */
  dec(by = 1): void {
    if (!this.live) this.family.use(this);
    this.value -= by;
  }
}

abstract class ValueFamily extends Family<ValueChild> {
  abstract readonly type: 'counter' | 'gauge';

  constructor(name: string, help: string, labelNames: readonly string[], registry: Registry) {
    super(name, help, labelNames, registry);
    if (labelNames.length === 0) this.child();
  }

  use(c: ValueChild): void {
    this.markLive(c);
  }

  protected create(labels: Labels): ValueChild {
    return new ValueChild(labels, this);
  }

  protected zero(c: ValueChild): void {
    c.value = 0;
  }

  get(): Promise<Exposed> {
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values: this.live.map((c) => ({ value: c.value, labels: { ...c.labels } })),
      aggregator: this.aggregator,
    });
  }
}

export class BoundCounter extends ValueFamily {
  readonly type = 'counter' as const;
}

export class BoundGauge extends ValueFamily {
  readonly type = 'gauge' as const;
}

/** One series of a histogram: counts per bucket (not cumulative), sum, count. */
export class HistogramChild implements Series {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  live = false;
  constructor(
    readonly labels: Labels,
    private readonly family: BoundHistogram,
  ) {
    this.counts = new Float64Array(family.upperBounds.length);
  }

  observe(value: number): void {
    // prom-client refuses these too; a NaN would poison the sum for good.
    if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    if (!this.live) this.family.use(this);
    const bounds = this.family.upperBounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        break;
      }
    }
    this.sum += value;
    this.count++;
  }
}

export class BoundHistogram extends Family<HistogramChild> {
  readonly type = 'histogram' as const;
  readonly upperBounds: readonly number[];

  constructor(
    name: string,
    help: string,
    labelNames: readonly string[],
    buckets: readonly number[],
    registry: Registry,
  ) {
    super(name, help, labelNames, registry);
    this.upperBounds = [...buckets];
    if (labelNames.length === 0) this.child();
  }

  use(c: HistogramChild): void {
    this.markLive(c);
  }

  protected create(labels: Labels): HistogramChild {
    return new HistogramChild(labels, this);
  }

  protected zero(c: HistogramChild): void {
    c.counts.fill(0);
    c.sum = 0;
    c.count = 0;
  }

  /** What the registry formats: the series' labels shared by its lines, `le` per bucket. */
  getForPromString(): Promise<Exposed> {
    const bucket = `${this.name}_bucket`;
    const values: ExposedValue[] = [];
    for (const c of this.live) {
      let acc = 0;
      for (let i = 0; i < this.upperBounds.length; i++) {
        acc += c.counts[i]!;
        const le = this.upperBounds[i]!;
        values.push({
          labels: { le },
          value: acc,
          metricName: bucket,
          exemplar: null,
          sharedLabels: c.labels,
        });
      }
      const shared = c.labels;
      values.push({
        labels: { le: '+Inf' },
        value: c.count,
        metricName: bucket,
        exemplar: null,
        sharedLabels: shared,
      });
      values.push({
        labels: {},
        value: c.sum,
        metricName: `${this.name}_sum`,
        exemplar: undefined,
        sharedLabels: shared,
      });
      values.push({
        labels: {},
        value: c.count,
        metricName: `${this.name}_count`,
        exemplar: undefined,
        sharedLabels: shared,
      });
    }
    return Promise.resolve({
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    });
  }

  /** The JSON form (Registry.getMetricsAsJSON): each line's labels in one object. */
  async get(): Promise<Exposed> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({
      ...rest,
      labels: { ...labels, ...sharedLabels },
    }));
    return data;
  }
}
