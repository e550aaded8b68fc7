// Metrics of a store that falls back to local state (Redis behind
// ResilientStateStore): the degraded flag as a 0/1 gauge and the store's
// resilience counters exported as Prometheus counters. Values are read at
// scrape time from store.health(), so nothing on the request path pays for them.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ResilienceCounters, StateStore } from '../state/store.js';

/** True for stores whose health carries resilience counters (the ones these metrics describe). */
export function hasResilienceMetrics(store: StateStore): boolean {
  return store.health().counters !== undefined;
}

const COUNTERS: Array<[keyof ResilienceCounters, string, string]> = [
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

export function registerStateMetrics(r: Registry, store: StateStore): void {
  new Gauge({
    name: 'hermes_state_store_degraded',
    help: '1 while the shared state (Redis) is unavailable and this replica schedules from local state, else 0.',
    registers: [r],
    collect() {
      this.set(store.health().degraded ? 1 : 0);
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
        const v = store.health().counters?.[key] ?? 0;
        if (v > seen) this.inc(v - seen);
        seen = Math.max(seen, v);
      },
    });
  }
}
