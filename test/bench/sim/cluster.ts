// One simulated run: a cluster of model servers (aggregated, or PD groups
// of prefill and decode servers) behind the real Director, MemoryStateStore
// and scheduling profile, in virtual time.
//  - Requests arrive (workload), the Director picks (the product's code, fed
//    by the store at virtual time), the request reaches its server after the
//    cache-indexer's answer time when the profile asks the indexer.
//  - Every scrape interval each server's waiting / running / KV usage is
//    written to the store (so plugins see signals up to one interval old).
//  - KV events (blocks stored / evicted) reach the in-process cache-indexer
//    index after a delay; the indexer answers from that index.
//  - PD: the prefill server computes the prompt, the KV moves to the chosen
//    decode server (setup + per-token time), which then decodes.
//  - When a request ends the Director releases its charges.
//  - Streamed responses: each decode step's tokens reach the router as SSE
//    chunks after a forwarding lag (stepClockLag); a StepClocks
//    (sim/step-clock.ts) records them, as a router's ext_proc response path
//    could, for the bench-only step-phase scorers (sim/pd-step-scorer.ts).
import { Director, type Decision, type PickTicket } from '../../../src/director/director.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';
import type { Endpoint, LLMRequest } from '../../../src/scheduling/types.js';
import { BlockIndex } from './block-index.js';
import { aggregatedEndpoints, pdEndpoints, type PdLayout } from './cluster-layout.js';
import { Engine, type EngineHooks } from './engine.js';
import { EventQueue } from './event-queue.js';
import { flush, type SimFlow } from './flow-control.js';
import { hitRatesFromIndex, InProcessIndexer } from './indexer-stub.js';
import type { RouterParams, ServerParams } from './params.js';
import { benchRegistry, loadPolicy, type OracleView, type PolicyDef } from './policies.js';
import { OracleModel } from './oracle.js';
import { Rng } from './rng.js';
import { StepClocks } from './step-clock.js';
import { explores, LandingFit } from './landing-fit.js';
import { BLOCK_TOKENS, type GeneratedRun } from './workloads.js';
import type { SimRequest } from './workload-types.js';

export interface ClusterSpec {
  server: ServerParams;
  /** Aggregated: number of servers. PD: groups of prefill + decode servers. */
  servers?: number;
  pd?: PdLayout;
}

export interface RunInput {
  policy: PolicyDef;
  cluster: ClusterSpec;
  router: RouterParams;
  run: GeneratedRun;
  seed: number;
  /** Give up this long after the window ends (requests still open are censored). */
  maxDrainS: number;
  /** Check engine invariants after every step (tests). */
  checkInvariants?: boolean;
  /** Flow control between arrivals and the Director (sim/flow-control.ts). */
  flow?: SimFlow;
  /** Record every engine's step times (Engine.stepLog; pd-breakdown --bound). */
  recordSteps?: boolean;
  /**
   * Forwarding lag of a streamed chunk from its step's end to the router:
   * fixed + uniform(0, jitter) seconds per step (default 1 ms + up to 1 ms).
   */
  stepClockLag?: { fixedS: number; jitterS: number };
  /**
   * Bench what-if: the engines schedule as vLLM's `--scheduling-policy
   * priority` with this priority per request (higher first; Engine.schedPriority).
   */
  enginePriority?: (sr: SimRequest) => number;
  /** Diagnostics: Engine.onStep on every engine (prio-probe). */
  onStep?: Engine['onStep'];
  /** Diagnostics: called at each request's arrival, before flow control or the pick (prio-probe --bound). */
  onArrival?: (sr: SimRequest, engines: readonly Engine[]) => void;
  /** Diagnostics: called every `everyS` virtual seconds with the engines (routing-probe). */
  probe?: { everyS: number; sample(t: number, engines: readonly Engine[]): void };
}

export interface RunOutput {
  requests: SimRequest[];
  /** Output tokens produced inside the measurement window. */
  windowTokens: number;
  endS: number;
  /** Busy seconds of each serving engine (prefill engines in PD). */
  busyS: number[];
  preemptions: number;
  indexerCalls: number;
  engines: Engine[];
}

export async function simulate(input: RunInput): Promise<RunOutput> {
  const { cluster, router, run } = input;
  if (cluster.server.blockSize !== BLOCK_TOKENS) {
    throw new Error(
      `server block size ${cluster.server.blockSize} != workload hash block size ${BLOCK_TOKENS}`,
    );
  }
  const q = new EventQueue();
  const nowMs = () => q.now * 1000;
  const rng = new Rng(input.seed ^ 0x5eed);

  // --- state shared by the router and the servers ---
  let endpoints: Endpoint[];
  const engines = new Map<string, Engine>();
  const kvIndex = new BlockIndex();
  let windowTokens = 0;
  let open = run.requests.length;
  const tickets = new Map<number, PickTicket>();

  // --- router ---
  const byRequestId = new Map<string, SimRequest>();
  for (const sr of run.requests) byRequestId.set(sr.req.requestId, sr);
  const oracleModel = new OracleModel(input.policy.oracle ?? 'r5', () => q.now);
  const stepClocks = new StepClocks();
  const landingFit = new LandingFit();
  /** Per streamed PD request: the router's pick time (ms) and prefill work ahead of it (tokens). */
  const picked = new Map<number, { atMs: number; x: number }>();
  const oracle: OracleView = {
    stepClocks: (ms) => stepClocks.view(ms),
    landingFit: () => landingFit,
    costs: (endpointIds: readonly string[], req: LLMRequest) => {
      const sr = byRequestId.get(req.requestId);
      if (!sr) return new Float64Array(endpointIds.length).fill(Infinity);
      return oracleModel.costs(
        endpointIds.map((id) => engines.get(id)),
        sr,
      );
    },
    exact: (endpointIds: readonly string[], req: LLMRequest) => {
      const sr = byRequestId.get(req.requestId);
      return endpointIds.map((id) => {
        const e = engines.get(id);
        if (!e) return undefined;
        return {
          cachedTokens: sr ? e.cachedPrefixTokens(sr.hashes) : 0,
          waiting: e.waiting.length,
          running: e.running.length,
          kvUsage: e.kvUsage,
          pendingPrefillTokens: e.pendingPrefillTokens(),
        };
      });
    },
  };
  const loaded = loadPolicy(input.policy, benchRegistry(oracle));
  const store = new MemoryStateStore({ now: nowMs });
  const indexer = new InProcessIndexer(undefined, { blockSizeTokens: cluster.server.blockSize, wire: false });
  indexer.answerWith = (req, candidates) => {
    const sr = byRequestId.get(req.requestId);
    return sr ? hitRatesFromIndex(kvIndex, sr.hashes, candidates) : undefined;
  };
  const director = new Director({
    store,
    profile: loaded.profile,
    indexer,
    random: rng.next,
    now: nowMs,
    stalenessMs: router.stalenessS * 1000,
    leaseMs: 1e12, // nothing dies in the simulator; releases are explicit
    hooks: { onReleased: () => input.flow?.kick() },
  });
  input.flow?.attach(director, (v) => loaded.saturationDetector.saturation(v), q, router.scrapeIntervalS);

  // --- servers ---
  const hooks: EngineHooks = {
    firstToken: (seq, t) => {
      seq.sr.firstTokenS = t;
      tickets.get(seq.sr.id)?.firstToken();
    },
    finished: (seq, t) => {
      const sr = seq.sr;
      sr.finishS = t;
      if (sr.hitTokens === undefined) sr.hitTokens = seq.hitTokens;
      open--;
      const ticket = tickets.get(sr.id);
      if (ticket) {
        tickets.delete(sr.id);
        void ticket.release();
      }
    },
    prefilled: (seq, t) => {
      const sr = seq.sr;
      sr.hitTokens = seq.hitTokens;
      sr.prefilledS = t;
      const decode = engines.get(decodeOf.get(sr.id)!)!;
      const p = decode.p;
      q.at(t + p.kvTransferSetupS + sr.promptTokens * p.kvTransferPerTokenS, () => decode.submit(sr, true));
    },
    kvEvents: (engine, stored, removed, t) => {
      q.at(t + router.kvEventDelayS, () => {
        for (const h of stored) kvIndex.add(engine.id, h);
        for (const h of removed) kvIndex.remove(engine.id, h);
      });
    },
    tokens: (n, t) => {
      if (t >= run.windowStartS && t < run.windowEndS) windowTokens += n;
    },
  };
  if (input.policy.mode === 'pd') {
    // One observation per decode step with a streamed sequence: its chunks
    // leave together, the earliest to arrive marks the boundary.
    const lag = input.stepClockLag ?? { fixedS: 0.001, jitterS: 0.001 };
    const lagRng = new Rng(input.seed ^ 0x57ec);
    const lastChunk = new Map<number, number>();
    hooks.sampled = (engine, seqs, t) => {
      if (engine.role !== 'decode') return;
      const streamed = seqs.filter((s) => s.sr.req.stream);
      if (streamed.length === 0) return;
      const firsts = streamed.filter((s) => s.generated === 1);
      const at = t + lag.fixedS + lag.jitterS * lagRng.next();
      q.at(at, () => {
        const ms = at * 1000;
        // A first chunk: its step began at the pod's previous boundary seen
        // (when that is about one period back: the pod was busy), so the
        // KV landed before it (LandingFit).
        const c = stepClocks.view(ms).get(engine.id);
        for (const s of firsts) {
          const pk = picked.get(s.sr.id);
          picked.delete(s.sr.id);
          if (!pk || !explores(s.sr.req.requestId)) continue;
          if (!c || c.periodMs === undefined || ms - c.lastMs > 1.5 * c.periodMs) continue;
          landingFit.add(pk.x, c.lastMs - c.periodMs / 2 - pk.atMs);
        }
        let prev: number | undefined;
        for (const s of streamed) {
          const p = lastChunk.get(s.sr.id);
          if (p !== undefined && (prev === undefined || p > prev)) prev = p;
          if (s.generated >= s.sr.outputTokens) lastChunk.delete(s.sr.id);
          else lastChunk.set(s.sr.id, ms);
        }
        stepClocks.observe(engine.id, ms, prev);
      });
    };
  }

  const decodeOf = new Map<number, string>();
  if (input.policy.mode === 'pd') {
    if (!cluster.pd) throw new Error(`policy ${input.policy.id} needs a PD cluster`);
    const pd = pdEndpoints(cluster.pd);
    endpoints = pd.all;
    for (const e of pd.all) {
      const role = pd.role.get(e.id)!;
      if (role !== 'leader') engines.set(e.id, new Engine(e.id, role, cluster.server, q, hooks));
    }
  } else {
    if (!cluster.servers) throw new Error(`policy ${input.policy.id} needs an aggregated cluster`);
    endpoints = aggregatedEndpoints(cluster.servers);
    for (const e of endpoints) engines.set(e.id, new Engine(e.id, 'agg', cluster.server, q, hooks));
  }

  if (input.recordSteps) for (const e of engines.values()) e.stepLog = [];
  if (input.enginePriority) for (const e of engines.values()) e.schedPriority = input.enginePriority;
  if (input.onStep) for (const e of engines.values()) e.onStep = input.onStep;
  const allEngines = [...engines.values()];
  await store.replaceEndpoints(endpoints);
  const indexerDelayS = director.needs.indexer ? router.indexerLatencyS : 0;

  // --- scraping ---
  const scrape = () => {
    const ms = nowMs();
    for (const e of engines.values()) {
      void store.writeSignals(e.id, {
        waitingQueueSize: e.waiting.length,
        runningRequests: e.running.length,
        kvCacheUsage: e.kvUsage,
        updatedAtMs: ms,
      });
    }
    if (open > 0) q.after(router.scrapeIntervalS, scrape);
  };
  q.at(0, scrape);
  const probe = input.probe;
  if (probe) {
    const all = [...engines.values()];
    const tick = () => {
      probe.sample(q.now, all);
      if (open > 0) q.after(probe.everyS, tick);
    };
    q.at(0, tick);
  }

  // --- arrivals ---
  for (const sr of run.requests) {
    const dispatch = (d: Decision) => {
      tickets.set(sr.id, d.ticket);
      const target = d.result.pd ? d.result.pd.prefill.endpoint.id : d.result.primary.endpoint.id;
      if (d.result.pd) {
        decodeOf.set(sr.id, d.result.pd.decode.endpoint.id);
        sr.decodeServer = d.result.pd.decode.endpoint.id;
        if (sr.req.stream) {
          const x = sr.promptTokens + d.result.pd.prefill.pendingPrefillTokens;
          picked.set(sr.id, { atMs: nowMs(), x });
        }
      }
      sr.server = target;
      oracleModel.picked(target, sr);
      const engine = engines.get(target);
      if (!engine) throw new Error(`policy ${input.policy.id} picked ${target}, which serves nothing`);
      q.at(q.now + indexerDelayS, () => {
        sr.dispatchS = q.now;
        engine.submit(sr);
      });
    };
    q.at(sr.arrivalS, async () => {
      input.onArrival?.(sr, allEngines);
      if (input.flow) return input.flow.arrive(sr, q, dispatch, () => open--);
      const t0 = performance.now();
      const d = await director.pick(sr.req);
      sr.decisionUs = (performance.now() - t0) * 1000;
      dispatch(d);
    });
  }

  // --- the loop ---
  const deadline = run.windowEndS + input.maxDrainS;
  for (;;) {
    const ev = q.pop();
    if (!ev || ev.t > deadline) break;
    const r = ev.run();
    if (r) await r;
    // Flow control: releases, and the dispatches they wake, happen at this virtual time.
    if (input.flow) await flush();
    if (input.checkInvariants) for (const e of engines.values()) e.checkInvariants();
    if (open === 0) break;
  }
  await indexer.close();
  await store.close();

  const serving = [...engines.values()].filter((e) => e.role !== 'decode');
  return {
    requests: run.requests,
    windowTokens,
    endS: q.now,
    busyS: serving.map((e) => e.busyTimeS),
    preemptions: [...engines.values()].reduce((a, e) => a + e.preemptions, 0),
    indexerCalls: indexer.calls,
    engines: [...engines.values()],
  };
}
