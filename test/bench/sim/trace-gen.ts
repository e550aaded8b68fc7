// A small generator of Mooncake-format traces (see trace.ts) with the
// reuse patterns KV-aware routing is about, in block space:
//  - chat conversations: a shared system prompt (one of a few), then turns
//    whose prompt is the whole conversation so far plus a new question;
//    users think for seconds between turns;
//  - tool-agent loops: a long shared agent prompt (tool definitions), then
//    many quick turns, each appending a tool result to the context and
//    producing a short tool call;
//  - one-shot requests on a shared system prompt with a unique document
//    (RAG-like): only the system prompt is reused.
// Block ids follow the format's meaning: a block keeps its id only while
// its whole content is unchanged, so the partly filled last block of a
// prompt gets a new id once the answer (or the next message) fills it.
import { Rng } from './rng.js';
import type { TraceRecord } from './trace.js';

export interface SessionMix {
  /** Share of sessions of each kind (normalised). */
  chat: number;
  agent: number;
  oneShot: number;
}

export interface TraceShape {
  /** Seconds of session arrivals (turns of late sessions may run past it). */
  durationS: number;
  /** New sessions per second (Poisson). */
  sessionsPerS: number;
  mix: SessionMix;
  blockTokens: number;
  /** Shared system prompts: how many of each kind and their length in tokens. */
  chatSystems: number;
  chatSystemTokens: number;
  agentSystems: number;
  agentSystemTokens: number;
  ragSystems: number;
  ragSystemTokens: number;
}

export const DEFAULT_TRACE_SHAPE: TraceShape = {
  durationS: 120,
  sessionsPerS: 2,
  mix: { chat: 0.45, agent: 0.3, oneShot: 0.25 },
  blockTokens: 512,
  chatSystems: 8,
  chatSystemTokens: 1500,
  agentSystems: 4,
  agentSystemTokens: 6000,
  ragSystems: 6,
  ragSystemTokens: 2500,
};

/** A conversation's context in blocks: ids of its full (final) blocks and its length. */
class Context {
  fullIds: number[];
  tokens: number;
  constructor(
    private readonly nextId: () => number,
    private readonly blockTokens: number,
    systemIds: readonly number[],
    systemTokens: number,
  ) {
    this.tokens = systemTokens;
    this.fullIds = systemIds.slice(0, Math.floor(systemTokens / blockTokens));
  }
  /** The prompt's block ids after appending `tokens`: full blocks kept, the rest new. */
  extend(tokens: number): { ids: number[]; length: number } {
    const length = this.tokens + tokens;
    const ids = this.fullIds.slice();
    while (ids.length < Math.ceil(length / this.blockTokens)) ids.push(this.nextId());
    return { ids, length };
  }
  /** The context after a prompt of `prompt` and its answer of `answerTokens`. */
  commit(prompt: { ids: number[]; length: number }, answerTokens: number): void {
    this.tokens = prompt.length + answerTokens;
    const keep = Math.floor(prompt.length / this.blockTokens);
    this.fullIds = prompt.ids.slice(0, keep);
    while (this.fullIds.length < Math.floor(this.tokens / this.blockTokens)) this.fullIds.push(this.nextId());
  }
}

/** Generates a trace; the same seed and shape give the same trace. */
export function generateTrace(seed: number, shape: TraceShape = DEFAULT_TRACE_SHAPE): TraceRecord[] {
  const rng = new Rng(seed);
  let next = 0;
  const nextId = () => next++;
  const blockIds = (tokens: number) => Array.from({ length: Math.ceil(tokens / shape.blockTokens) }, nextId);
  const chatSystems = Array.from({ length: shape.chatSystems }, () => blockIds(shape.chatSystemTokens));
  const agentSystems = Array.from({ length: shape.agentSystems }, () => blockIds(shape.agentSystemTokens));
  const ragSystems = Array.from({ length: shape.ragSystems }, () => blockIds(shape.ragSystemTokens));
  const out: TraceRecord[] = [];
  // Turns after the end are dropped, so the load is steady over the whole trace.
  const emit = (tMs: number, prompt: { ids: number[]; length: number }, outTokens: number) =>
    tMs < shape.durationS * 1000 &&
    out.push({
      timestamp: Math.round(tMs),
      input_length: prompt.length,
      output_length: Math.max(1, Math.round(outTokens)),
      hash_ids: prompt.ids,
    });
  const total = shape.mix.chat + shape.mix.agent + shape.mix.oneShot;
  let t = rng.exp(1 / shape.sessionsPerS);
  while (t < shape.durationS) {
    const kind = rng.next() * total;
    if (kind < shape.mix.chat) {
      const sys = chatSystems[Math.floor(rng.next() * chatSystems.length)]!;
      const ctx = new Context(nextId, shape.blockTokens, sys, shape.chatSystemTokens);
      const turns = rng.int(2, 8);
      let at = t;
      for (let k = 0; k < turns; k++) {
        const prompt = ctx.extend(rng.int(20, 300));
        const answer = Math.max(16, Math.round(rng.normal(350, 150)));
        emit(at * 1000, prompt, answer);
        ctx.commit(prompt, answer);
        // Generation (~30 ms a token) plus the user's think time.
        at += answer * 0.03 + rng.exp(8);
      }
    } else if (kind < shape.mix.chat + shape.mix.agent) {
      const sys = agentSystems[Math.floor(rng.next() * agentSystems.length)]!;
      const ctx = new Context(nextId, shape.blockTokens, sys, shape.agentSystemTokens);
      const steps = rng.int(4, 16);
      let at = t;
      let pending = rng.int(50, 200); // the task
      for (let k = 0; k < steps; k++) {
        const prompt = ctx.extend(pending);
        const call = rng.int(30, 150);
        emit(at * 1000, prompt, call);
        ctx.commit(prompt, call);
        // The tool runs, then its result is the next turn's new content.
        pending = Math.round(rng.lognormal(600, 0.8));
        at += call * 0.03 + 0.2 + rng.exp(1);
      }
    } else {
      const sys = ragSystems[Math.floor(rng.next() * ragSystems.length)]!;
      const ctx = new Context(nextId, shape.blockTokens, sys, shape.ragSystemTokens);
      emit(t * 1000, ctx.extend(rng.int(800, 4000)), rng.int(100, 500));
    }
    t += rng.exp(1 / shape.sessionsPerS);
  }
  return out.sort((a, b) => a.timestamp - b.timestamp);
}

/** JSONL text of a trace, one record a line. */
export function traceJsonl(records: readonly TraceRecord[]): string {
  return records.map((r) => JSON.stringify(r)).join('\n') + '\n';
}
