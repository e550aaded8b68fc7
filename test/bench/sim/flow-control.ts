// Flow control in the routing simulator: the product's FlowController (and
// its BandQueue) between arrivals and the Director, on the virtual clock.
// Saturation is judged by the policy's saturation detector (its
// EndpointPickerConfig's `saturationDetector`, default utilization-detector
// with GIE's thresholds) on the Director's snapshot, as in the EPP; a
// response ending releases its charges and wakes the queue, and the queue
// re-judges the pool every scrape interval.
import type { Decision, Director } from '../../../src/director/director.js';
import { FlowController, FlowRejection } from '../../../src/flow/flow-controller.js';
import type { FlowControlSettings } from '../../../src/config/flow-control.js';
import type { EndpointView } from '../../../src/scheduling/types.js';
import { SchedulingError } from '../../../src/scheduling/types.js';
import type { EventQueue } from './event-queue.js';
import type { SimRequest } from './workload-types.js';

export interface FlowSpec {
  settings: FlowControlSettings;
  /** The request's InferenceObjective priority. */
  priorityOf(sr: SimRequest): number;
  /** FlowControllerOptions.sheddableSaturation. */
  sheddableSaturation?: number;
  /** A detector of its own instead of the policy's (e.g. other thresholds). */
  saturation?: (views: readonly EndpointView[]) => number;
}

export type FlowOutcome =
  | { kind: 'dispatched'; priority: number; waitS: number }
  | { kind: 'refused'; priority: number; status: number; reason: string; waitS: number };

/** Lets every pending promise of the in-memory store settle at the current virtual time. */
export const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

export class SimFlow {
  readonly outcomes = new Map<number, FlowOutcome>();
  private controller: FlowController | undefined;

  constructor(readonly spec: FlowSpec) {}

  /** Called by simulate() once its Director and clock exist. */
  attach(
    director: Director,
    saturation: (views: readonly EndpointView[]) => number,
    q: EventQueue,
    pollS: number,
  ): void {
    this.controller = new FlowController({
      settings: this.spec.settings,
      director,
      saturation: this.spec.saturation ?? saturation,
      pollMs: pollS * 1000,
      sheddableSaturation: this.spec.sheddableSaturation,
      now: () => q.now * 1000,
      setTimer: (ms, fn) => {
        let live = true;
        q.after(ms / 1000, () => {
          if (live) fn();
        });
        return () => (live = false);
      },
    });
  }

  /** A response ended: capacity freed. */
  kick(): void {
    this.controller?.kick();
  }

  /**
   * One arrival: dispatched now, queued (dispatched later at its virtual time)
   * or refused. Resolves once the outcome for now is known.
   */
  async arrive(
    sr: SimRequest,
    q: EventQueue,
    dispatch: (d: Decision) => void,
    dropped: () => void,
  ): Promise<void> {
    const c = this.controller;
    if (!c) throw new Error('SimFlow used before attach()');
    const priority = this.spec.priorityOf(sr);
    c.pick(sr.req, undefined, { priority, bytes: sr.req.promptText.length }).then(
      (d) => {
        this.outcomes.set(sr.id, { kind: 'dispatched', priority, waitS: q.now - sr.arrivalS });
        dispatch(d);
      },
      (e: unknown) => {
        const status =
          e instanceof FlowRejection
            ? e.status
            : e instanceof SchedulingError && e.code === 'SATURATED'
              ? 429
              : 500;
        const reason = e instanceof FlowRejection ? e.reason : (e as Error).message;
        this.outcomes.set(sr.id, { kind: 'refused', priority, status, reason, waitS: q.now - sr.arrivalS });
        dropped();
      },
    );
    await flush();
  }
}
