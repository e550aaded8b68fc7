// The EndpointPickerConfig `flowControl` section, as GIE v1.5 writes it
// (apix/config/v1alpha1 FlowControlConfig): its presence turns queueing on
// (no feature gate). Quantities are Kubernetes quantities ("1k", "500M",
// "1Gi") or plain numbers; durations are Go durations ("30s", "1m30s").
//
// Defaults, GIE's unless marked:
//   maxRequests, maxBytes (global): 0 = unlimited;
//   per band: maxRequests 5000, maxBytes 1e9;
//   defaultRequestTTL: 4 s (Hermes; GIE waits for the client's deadline,
//   which holds an LLM request far past the point where queueing helps).
import { z } from 'zod';
import { ConfigError, fromZodError } from './errors.js';

export const BAND_DEFAULT_MAX_REQUESTS = 5000;
export const BAND_DEFAULT_MAX_BYTES = 1_000_000_000;
export const DEFAULT_REQUEST_TTL_MS = 4_000;

const FCFS = 'fcfs-ordering-policy';
const FAIRNESS = ['global-strict-fairness-policy', 'round-robin-fairness-policy'] as const;
const USAGE_LIMIT = 'static-usage-limit-policy';

const QUANTITY_SUFFIX: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 1024,
  Mi: 1024 ** 2,
  Gi: 1024 ** 3,
  Ti: 1024 ** 4,
};

/** A Kubernetes quantity as a non-negative integer, or undefined when it is not one. */
export function parseQuantity(v: unknown): number | undefined {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 0 ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)(?:e(\d+))?(k|M|G|T|Ki|Mi|Gi|Ti)?\s*$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]) * 10 ** Number(m[2] ?? 0) * QUANTITY_SUFFIX[m[3] ?? '']!;
  return Number.isFinite(n) ? Math.ceil(n) : undefined;
}

const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };

/** A Go duration ("1m30s", "500ms", "0") in milliseconds, or undefined. */
export function parseGoDurationMs(v: unknown): number | undefined {
  if (typeof v === 'number') return v >= 0 && Number.isFinite(v) ? v : undefined;
  if (typeof v !== 'string') return undefined;
  const s = v.trim();
  if (s === '0') return 0;
  if (!/^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/.test(s)) return undefined;
  let ms = 0;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) ms += Number(m[1]) * GO_UNITS[m[2]!]!;
  return ms;
}

const quantity = (what: string) =>
  z.unknown().transform((v, ctx) => {
    const n = parseQuantity(v);
    if (n === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected ${what}: a count >= 0 such as 100, "1k" or "1Gi"` });
      return z.NEVER;
    }
    return n;
  });

const duration = z.unknown().transform((v, ctx) => {
  const ms = parseGoDurationMs(v);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: 'expected a duration >= 0 such as "30s" or "1m30s"' });
    return z.NEVER;
  }
  return ms;
});

const bandFields = {
  maxBytes: quantity('a byte size').optional(),
  maxRequests: quantity('a request count').optional(),
  fairnessPolicyRef: z
    .enum(FAIRNESS, {
      error: `expected ${FAIRNESS.join(' or ')} (a band holds one flow: both order alike)`,
    })
    .optional(),
  orderingPolicyRef: z.literal(FCFS, { error: `expected ${FCFS} (the only ordering built)` }).optional(),
};

const priorityBand = z.strictObject({
  priority: z.number({ error: 'expected an integer priority' }).int('expected an integer priority'),
  ...bandFields,
});

export const flowControlSection = z.strictObject({
  maxBytes: quantity('a byte size').optional(),
  maxRequests: quantity('a request count').optional(),
  defaultRequestTTL: duration.optional(),
  defaultPriorityBand: z.strictObject({ priority: z.number().int().optional(), ...bandFields }).optional(),
  priorityBands: z.array(priorityBand, { error: 'expected a list of priority bands' }).optional(),
  usageLimitPolicyPluginRef: z
    .literal(USAGE_LIMIT, { error: `expected ${USAGE_LIMIT} (the only usage limit built)` })
    .optional(),
});

export interface BandLimits {
  /** Queued requests the band holds at most. */
  maxRequests: number;
  /** Queued body bytes the band holds at most. */
  maxBytes: number;
}

export interface FlowControlSettings {
  /** Across every band; 0 = unlimited. */
  maxRequests: number;
  maxBytes: number;
  /** How long a request may wait in the queue before it is evicted (503). */
  requestTtlMs: number;
  /** Limits of the bands configured by priority. */
  bands: ReadonlyMap<number, BandLimits>;
  /** Limits of a band for any other priority. */
  defaultBand: BandLimits;
}

function limits(b: { maxRequests?: number; maxBytes?: number } | undefined, base: BandLimits): BandLimits {
  // GIE: 0 or omitted falls back to the default.
  return {
    maxRequests: b?.maxRequests || base.maxRequests,
    maxBytes: b?.maxBytes || base.maxBytes,
  };
}

/** Validates the section (file + YAML path on error) into the queue's settings. */
export function flowControlSettingsOf(
  section: unknown,
  file: string,
  at: (p: ReadonlyArray<PropertyKey>) => string,
): FlowControlSettings | undefined {
  if (section === undefined || section === null) return undefined;
  const parsed = flowControlSection.safeParse(section);
  if (!parsed.success) throw fromZodError(file, at(['flowControl']), parsed.error);
  const s = parsed.data;
  const gieDefault = { maxRequests: BAND_DEFAULT_MAX_REQUESTS, maxBytes: BAND_DEFAULT_MAX_BYTES };
  const defaultBand = limits(s.defaultPriorityBand, gieDefault);
  const bands = new Map<number, BandLimits>();
  (s.priorityBands ?? []).forEach((b, i) => {
    if (bands.has(b.priority)) {
      throw new ConfigError(
        file,
        at(['flowControl', 'priorityBands', i, 'priority']),
        `a priority no other band has, ${b.priority} is configured twice`,
      );
    }
    bands.set(b.priority, limits(b, defaultBand));
  });
  return {
    maxRequests: s.maxRequests ?? 0,
    maxBytes: s.maxBytes ?? 0,
    // 0 means "no TTL of our own" in GIE; here it falls back to the default, as a queue needs a bound.
    requestTtlMs: s.defaultRequestTTL || DEFAULT_REQUEST_TTL_MS,
    bands,
    defaultBand,
  };
}
