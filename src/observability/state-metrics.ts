// Metrics of the shared-state wrapper (Redis behind DegradedStateStore): the
// degraded flag as a 0/1 gauge and the wrapper's own counters exported as
// Prometheus counters. Values are read at scrape time from the store, so
// nothing on the request path pays for them.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { DegradedCounters } from '../state/degraded-store.js';

/** What is read of a degraded-capable store (DegradedStateStore). */
export interface DegradableStore {
  readonly degraded: boolean;
  readonly counters: DegradedCounters;
}

export function isDegradable(store: object): store is DegradableStore {
  const s = store as Partial<DegradableStore> & { onDegradedChange?: unknown };
  return (
    typeof s.degraded === 'boolean' &&
    typeof s.counters === 'object' &&
    typeof s.onDegradedChange === 'function'
  );
}

const COUNTERS: Array<[keyof DegradedCounters, string, string]> = [
  [
    'fallbacks',
    'hermes_state_store_fallbacks_total',
    'State calls answered from local state because Redis was unavailable.',
  ],
  [
    'errors',
    'hermes_state_store_redis_errors_total',
    'Redis calls that failed (they start or prolong degraded mode).',
  ],
  ['degradedEntered', 'hermes_state_store_degraded_entries_total', 'Times the shared state went degraded.'],
  [
    'resyncs',
    'hermes_state_store_resyncs_total',
    'Completed resynchronisations with Redis after degraded mode.',
  ],
  [
    'resyncFailures',
    'hermes_state_store_resync_failures_total',
    'Probes or resynchronisations with Redis that failed.',
  ],
];

export function registerStateMetrics(r: Registry, store: DegradableStore): void {
  new Gauge({
    name: 'hermes_state_store_degraded',
    help: '1 while the shared state (Redis) is unavailable and this replica schedules from local state, else 0.',
    registers: [r],
    collect() {
      this.set(store.degraded ? 1 : 0);
    },
  });
  for (const [key, name, help] of COUNTERS) {
    let seen = 0;
    new Counter({
      name,
      help,
      registers: [r],
      collect() {
        // The store's counters only grow: add what happened since the last scrape.
        const v = store.counters[key];
        if (v > seen) this.inc(v - seen);
        seen = Math.max(seen, v);
      },
    });
  }
}
