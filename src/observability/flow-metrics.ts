// Flow-control metrics, per priority band: queue length (read from the
// queue at scrape time), queue wait by outcome, dispatches, rejections by
// reason, rewritten models. Priorities come from configured InferenceObjectives: bounded.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { FlowHooks, FlowState } from '../flow/flow-controller.js';

const WAIT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 4, 5, 7.5, 10, 15, 30, 60];

export function registerFlowMetrics(r: Registry, state: () => FlowState | undefined): FlowHooks {
  new Gauge({
    name: 'hermes_flow_queue_length',
    help: 'Requests waiting in the flow-control queue, per priority band.',
    labelNames: ['priority'],
    registers: [r],
    collect() {
      this.reset();
      for (const b of state()?.bands ?? []) this.set({ priority: String(b.priority) }, b.length);
    },
  });
  new Gauge({
    name: 'hermes_flow_queue_bytes',
    help: 'Body bytes waiting in the flow-control queue, per priority band.',
    labelNames: ['priority'],
    registers: [r],
    collect() {
      this.reset();
      for (const b of state()?.bands ?? []) this.set({ priority: String(b.priority) }, b.bytes);
    },
  });
  const wait = new Histogram({
    name: 'hermes_flow_queue_wait_seconds',
    help: 'Time requests spent in the flow-control queue, per priority band and outcome.',
    labelNames: ['priority', 'outcome'],
    buckets: WAIT_BUCKETS,
    registers: [r],
  });
  const dispatched = new Counter({
    name: 'hermes_flow_dispatched_total',
    help: 'Requests that left the flow-control queue for scheduling, per priority band.',
    labelNames: ['priority'],
    registers: [r],
  });
  const queued = new Counter({
    name: 'hermes_flow_queued_total',
    help: 'Requests that had to wait in the flow-control queue (pool saturated), per priority band.',
    labelNames: ['priority'],
    registers: [r],
  });
  const rejected = new Counter({
    name: 'hermes_flow_rejected_total',
    help: 'Requests flow control answered instead of scheduling, per priority band and reason (capacity and shutdown: 429; ttl and cancelled: 503).',
    labelNames: ['priority', 'reason'],
    registers: [r],
  });
  const rewritten = new Counter({
    name: 'hermes_flow_rewritten_total',
    help: 'Requests whose model was rewritten (InferenceModelRewrite or x-gateway-model-name-rewrite), per priority band.',
    labelNames: ['priority'],
    registers: [r],
  });
  const local = new Counter({
    name: 'hermes_flow_admission_local_total',
    help: "Flow-control admissions judged on this replica's view alone (the shared store unreachable: other replicas' admissions unseen).",
    registers: [r],
  });
  const yielded = new Counter({
    name: 'hermes_flow_yielded_total',
    help: 'Times a request had room in the pool and left it to an older request queued on another replica (cross-replica fair dispatch), per priority band.',
    labelNames: ['priority'],
    registers: [r],
  });
  return {
    judgedLocally: () => local.inc(),
    yielded: (p) => yielded.inc({ priority: String(p) }),
    rewritten: (p) => rewritten.inc({ priority: String(p) }),
    queued: (p) => queued.inc({ priority: String(p) }),
    dispatched: (p, waitMs) => {
      dispatched.inc({ priority: String(p) });
      wait.observe({ priority: String(p), outcome: 'dispatched' }, waitMs / 1000);
    },
    rejected: (p, reason, waitMs) => {
      rejected.inc({ priority: String(p), reason });
      if (reason !== 'capacity') wait.observe({ priority: String(p), outcome: reason }, waitMs / 1000);
    },
  };
}

/** How often a replica judging admissions alone says so (it may last the whole outage). */
const LOCAL_ADMISSION_LOG_MS = 10_000;

/** Adds a warning, at most one per LOCAL_ADMISSION_LOG_MS, when admissions are judged on the local view. */
export function withLocalAdmissionLog(
  hooks: FlowHooks,
  logger: { warn(fields: object, msg: string): void },
  now: () => number = Date.now,
): FlowHooks {
  let count = 0;
  let loggedAtMs = -Infinity;
  return {
    ...hooks,
    judgedLocally: () => {
      hooks.judgedLocally?.();
      count++;
      const t = now();
      if (t - loggedAtMs < LOCAL_ADMISSION_LOG_MS) return;
      loggedAtMs = t;
      logger.warn(
        { admissions: count },
        'flow control judges admissions on this replica alone: shared state unreachable, other replicas unseen',
      );
      count = 0;
    },
  };
}
