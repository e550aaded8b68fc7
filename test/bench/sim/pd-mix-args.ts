// What the long-short-mix PD studies (pd-step.ts, pd-breakdown.ts) share:
// their flags and the routing benchmark's seeds and arrivals per load.
import type { PolicyId } from './policies.js';
import { SCENARIOS, type Scenario } from './scenarios.js';

/** Comma-separated values of `flag`, or `fallback`'s when it is absent or has no value. */
export function flagList(args: readonly string[], flag: string, fallback: string): string[] {
  const i = args.indexOf(flag);
  return (i < 0 ? fallback : (args[i + 1] ?? fallback)).split(',').filter(Boolean);
}

/** The first value of `flag` as a number, or `fallback`. */
export function flagNumber(args: readonly string[], flag: string, fallback: number): number {
  return Number(flagList(args, flag, String(fallback))[0]);
}

/** The --policy list, or `fallback`. */
export function policiesArg(args: readonly string[], fallback: string): PolicyId[] {
  return flagList(args, '--policy', fallback) as PolicyId[];
}

/** The long-short-mix scenario (PD cluster) of the routing benchmark. */
export function longShortMix(): Scenario {
  return SCENARIOS.find((s) => s.workload === 'long-short-mix')!;
}

/** The seed of run `index` at `qps`, as the routing benchmark numbers them (same arrivals). */
export function mixSeed(index: number, qps: number): number {
  return 1000 * (index + 1) + Math.round(qps * 10);
}
