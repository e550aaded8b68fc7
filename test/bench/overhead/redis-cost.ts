// Section 4: what Redis costs per decision, against a redis-server this
// section starts on loopback (test/helpers/redis-server.ts) and stops.
//   state traffic: the state benchmark's decision (test/bench/state.ts
//     `latency`: readSnapshot + commitPick + release, 8 endpoints, 32 prefix
//     hashes), memory vs RedisStateStore, one at a time;
//   whole decision: the scheduler benchmark's cell (Director + profile) over
//     the production Redis stack (createRedisStateStore: RedisStateStore behind
//     the degraded-mode wrapper, as `epp --redis-url` runs) vs MemoryStateStore.
//     The release is outside the clock there, so it adds one round trip per
//     request that the decision time does not show.
import { createRedisClient, RedisStateStore } from '../../../src/state/redis-store.js';
import { createRedisStateStore } from '../../../src/state/create-store.js';
import type { ResilientStateStore } from '../../../src/state/resilient-store.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import { startRedis } from '../../helpers/redis-server.js';
import { benchCell } from '../scheduler.js';
import { loadExampleProfile } from '../sim/configs.js';
import { latency, type LatencyRow } from '../state.js';
import { formatTable, noiseSummary, round, runs, say, spread } from './report.js';

export interface RedisOptions {
  stateDecisions: number;
  profiles: string[];
  endpoints: number[];
  promptTokens: number;
  warmup: number;
  timed: number;
  repeats: number;
}

export interface StateTrafficRow {
  backend: 'memory' | 'redis';
  roundTripsPerDecision: number | null;
  p50Us: number[];
  p99Us: number[];
}

export interface RedisDecisionRow {
  profile: string;
  endpoints: number;
  promptTokens: number;
  memoryP50Us: number[];
  redisP50Us: number[];
  memoryP99Us: number[];
  redisP99Us: number[];
  /** redis p50 - memory p50, per repeat. */
  addedP50Us: number[];
  /** Calls answered locally because Redis failed or timed out (should be 0). */
  degradedFallbacks: number;
}

export interface RedisSection {
  redisVersion: string | null;
  stateTraffic: StateTrafficRow[];
  decisions: RedisDecisionRow[];
  noise: { stateP50: ReturnType<typeof noiseSummary>; addedP50: ReturnType<typeof noiseSummary> };
}

function merge(backend: StateTrafficRow['backend'], rs: LatencyRow[]): StateTrafficRow {
  return {
    backend,
    roundTripsPerDecision: rs[0]!.roundTripsPerDecision,
    p50Us: rs.map((r) => r.p50Us),
    p99Us: rs.map((r) => r.p99Us),
  };
}

export async function redisSection(o: RedisOptions): Promise<RedisSection> {
  say(`\n## 4. Redis cost per decision (loopback redis-server, ${o.repeats} run(s))`);
  const server = await startRedis();
  let pools = 0;
  try {
    const version = await (async () => {
      const c = createRedisClient(server.url);
      try {
        await c.connect();
        const info = await c.info('server');
        return /redis_version:(\S+)/.exec(info)?.[1] ?? null;
      } finally {
        c.disconnect();
      }
    })();
    const mem: LatencyRow[] = [];
    const red: LatencyRow[] = [];
    for (let k = 0; k < o.repeats; k++) {
      mem.push(await latency(new MemoryStateStore(), 'memory', o.stateDecisions));
      const redis = new RedisStateStore(createRedisClient(server.url), {
        pool: `bench-ovh-state-${pools++}`,
      });
      await redis.connect();
      try {
        red.push(await latency(redis, 'redis', o.stateDecisions));
      } finally {
        await redis.close();
      }
    }
    const stateTraffic = [merge('memory', mem), merge('redis', red)];
    for (const r of stateTraffic)
      say(
        `  state traffic ${r.backend.padEnd(6)} p50 ${runs(r.p50Us, 0)} us  p99 ${runs(r.p99Us, 0)} us  round trips ${r.roundTripsPerDecision ?? '-'}`,
      );

    const decisions: RedisDecisionRow[] = [];
    let seed = 1000;
    for (const name of o.profiles) {
      const outcome = loadExampleProfile(name);
      if (!outcome.ok) {
        say(`  ${name}: skipped (${outcome.error})`);
        continue;
      }
      for (const n of o.endpoints) {
        const row: RedisDecisionRow = {
          profile: name,
          endpoints: n,
          promptTokens: o.promptTokens,
          memoryP50Us: [],
          redisP50Us: [],
          memoryP99Us: [],
          redisP99Us: [],
          addedP50Us: [],
          degradedFallbacks: 0,
        };
        for (let k = 0; k < o.repeats; k++) {
          const s = seed++;
          const m = await benchCell(name, outcome.loaded, n, o.promptTokens, o.warmup, o.timed, s, 'cached');
          let wrapped: ResilientStateStore | undefined;
          const r = await benchCell(
            name,
            outcome.loaded,
            n,
            o.promptTokens,
            o.warmup,
            o.timed,
            s,
            'cached',
            async () => {
              wrapped = await createRedisStateStore({
                redisUrl: server.url,
                pool: `bench-ovh-dec-${pools++}`,
              });
              return wrapped;
            },
          );
          row.degradedFallbacks += wrapped?.counters.fallbacks ?? 0;
          row.memoryP50Us.push(m.p50Us);
          row.redisP50Us.push(r.p50Us);
          row.memoryP99Us.push(m.p99Us);
          row.redisP99Us.push(r.p99Us);
          row.addedP50Us.push(round(r.p50Us - m.p50Us));
        }
        decisions.push(row);
        say(
          `  decision ${name.padEnd(22)} ${String(n).padStart(3)} eps ${o.promptTokens} tok: memory p50 ${runs(row.memoryP50Us)} us, redis p50 ${runs(row.redisP50Us)} us (p99 ${runs(row.redisP99Us)}), added ${runs(row.addedP50Us)} us${row.degradedFallbacks ? `  (${row.degradedFallbacks} DEGRADED fallbacks)` : ''}`,
        );
      }
    }
    return {
      redisVersion: version,
      stateTraffic,
      decisions,
      noise: {
        stateP50: noiseSummary(stateTraffic.map((r) => spread(r.p50Us))),
        addedP50: noiseSummary(decisions.map((r) => spread(r.addedP50Us))),
      },
    };
  } finally {
    await server.stop();
  }
}

export function redisTables(s: RedisSection): string {
  const traffic = formatTable({
    header: ['state traffic per decision', 'p50 us (runs)', 'p99 us (runs)', 'round trips'],
    rows: s.stateTraffic.map((r) => [
      r.backend,
      runs(r.p50Us, 0),
      runs(r.p99Us, 0),
      r.roundTripsPerDecision ?? '-',
    ]),
  });
  const dec = formatTable({
    header: [
      'profile',
      'endpoints',
      'tokens',
      'memory p50 us',
      'redis p50 us',
      'redis p99 us',
      'added p50 us',
    ],
    rows: s.decisions.map((r) => [
      r.profile,
      r.endpoints,
      r.promptTokens,
      runs(r.memoryP50Us),
      runs(r.redisP50Us),
      runs(r.redisP99Us),
      runs(r.addedP50Us),
    ]),
  });
  return `${traffic}\n\n${dec}`;
}
