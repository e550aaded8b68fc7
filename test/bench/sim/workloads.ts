// The workloads of the routing benchmark. Each one is a generator: given a
// seed, an offered load (Poisson arrivals, requests/s) and a measurement
// window, it returns the warm-up requests (not measured; they seat the KV
// caches and the router's indices, with 1 output token each, as GIE's
// warm-up stage does) followed by the measured ones. Prompts are real text
// (4 characters per token) so the router hashes and matches them exactly as
// in production; the model-server block hashes are computed once per
// distinct prompt.
import { textBlockHashes } from '../../../src/request/prefix-hash.js';
import { renderChat } from '../../../src/request/chat-template.js';
import { estimateTokens } from '../../../src/request/tokens.js';
import type { ChatMessage, LLMRequest } from '../../../src/scheduling/types.js';
import { SIM_BLOCK_TOKENS } from './params.js';
import { Rng, randomText } from './rng.js';
import type { SimRequest } from './workload-types.js';

export const MODEL = 'sim-model';
/** Model-server KV block size the prompt hashes are cut at. */
export const BLOCK_TOKENS = SIM_BLOCK_TOKENS;

export type WorkloadId =
  | 'shared-prefix'
  | 'shared-prefix-cold'
  | 'low-reuse'
  | 'multi-turn'
  | 'no-reuse'
  | 'long-short-mix'
  | 'hot-prefix';

export interface GeneratedRun {
  requests: SimRequest[];
  windowStartS: number;
  windowEndS: number;
}

export interface WorkloadGenerator {
  generate(seed: number, qps: number, windowS: number): GeneratedRun;
}

/** Shared random text; prompts are slices of it behind a unique head. */
class TextPool {
  readonly text: string;
  constructor(rng: Rng, chars: number) {
    this.text = randomText(rng, chars);
  }
  /** `chars` characters starting with `head`. */
  make(rng: Rng, head: string, chars: number): string {
    const body = Math.max(0, chars - head.length);
    if (body >= this.text.length)
      return head + this.text.repeat(Math.ceil(body / this.text.length)).slice(0, body);
    const off = Math.floor(rng.next() * (this.text.length - body));
    return head + this.text.slice(off, off + body);
  }
}

interface PromptTemplate {
  messages: ChatMessage[];
  promptText: string;
  promptTokens: number;
  hashes: string[];
}

function template(messages: ChatMessage[]): PromptTemplate {
  const promptText = renderChat(messages);
  return {
    messages,
    promptText,
    promptTokens: estimateTokens(promptText),
    hashes: textBlockHashes(promptText, MODEL, BLOCK_TOKENS, Number.MAX_SAFE_INTEGER),
  };
}

function llmRequest(id: string, t: PromptTemplate): LLMRequest {
  return {
    requestId: id,
    model: MODEL,
    apiType: 'chat',
    promptText: t.promptText,
    messages: t.messages,
    promptTokens: t.promptTokens,
    stream: true,
    headers: {},
  };
}

function simRequest(
  id: number,
  arrivalS: number,
  t: PromptTemplate,
  outputTokens: number,
  measured: boolean,
  extra: Partial<SimRequest> = {},
): SimRequest {
  return {
    id,
    arrivalS,
    req: llmRequest(`req-${id}`, t),
    promptTokens: t.promptTokens,
    outputTokens: Math.max(1, Math.round(outputTokens)),
    hashes: t.hashes,
    measured,
    ...extra,
  };
}

/** Poisson arrival times in [start, start + windowS). */
function arrivals(rng: Rng, qps: number, start: number, windowS: number): number[] {
  const out: number[] = [];
  let t = start + rng.exp(1 / qps);
  while (t < start + windowS) {
    out.push(t);
    t += rng.exp(1 / qps);
  }
  return out;
}

export interface SharedPrefixShape {
  groups: number;
  promptsPerGroup: number;
  systemTokens: number;
  questionTokens: number;
  outputTokens: number;
  /** Warm-up rate (GIE: 15 QPS until the whole prompt set was sent once). */
  warmupQps: number;
}

/**
 * GIE / inference-perf `shared_prefix`: groups x prompts, each prompt a
 * group system prompt plus its own question; measured requests pick a
 * prompt of the set uniformly at random, so prompts repeat.
 */
export function sharedPrefix(shape: SharedPrefixShape): WorkloadGenerator {
  return {
    generate(seed, qps, windowS) {
      const rng = new Rng(seed);
      const pool = new TextPool(rng, 200_000);
      const prompts: PromptTemplate[] = [];
      for (let g = 0; g < shape.groups; g++) {
        const system = pool.make(rng, `system ${seed}/${g}: `, shape.systemTokens * 4);
        for (let p = 0; p < shape.promptsPerGroup; p++) {
          const question = pool.make(rng, `question ${seed}/${g}/${p}: `, shape.questionTokens * 4);
          prompts.push(
            template([
              { role: 'system', content: system },
              { role: 'user', content: question },
            ]),
          );
        }
      }
      const requests: SimRequest[] = [];
      let id = 0;
      // Warm-up: every prompt once, in a random order.
      const order = prompts.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(rng.next() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      let t = 0;
      for (const i of order) {
        t += rng.exp(1 / shape.warmupQps);
        requests.push(simRequest(id++, t, prompts[i]!, 1, false));
      }
      const start = t + 5;
      for (const at of arrivals(rng, qps, start, windowS)) {
        const p = prompts[Math.floor(rng.next() * prompts.length)]!;
        requests.push(simRequest(id++, at, p, shape.outputTokens, true));
      }
      return { requests, windowStartS: start, windowEndS: start + windowS };
    },
  };
}

export interface MultiTurnShape {
  groups: number;
  usersPerGroup: number;
  systemTokens: number;
  questionMean: number;
  questionSd: number;
  outputMean: number;
  outputSd: number;
  /** A conversation restarts after this many turns (bounds the context). */
  maxTurns: number;
}

/**
 * Multi-turn chat (GIE short-questions/few-system-prompts/multi-chat):
 * each arrival is the next turn of a random user; its prompt is the whole
 * conversation so far (system prompt, earlier questions and answers) plus a
 * new question. The model's answers are fixed text, so the next turn's
 * prompt extends the previous prompt + answer exactly, and the model server
 * caches the answer's blocks when a turn ends (as vLLM does).
 */
export function multiTurn(shape: MultiTurnShape): WorkloadGenerator {
  return {
    generate(seed, qps, windowS) {
      const rng = new Rng(seed);
      const pool = new TextPool(rng, 200_000);
      const systems = Array.from({ length: shape.groups }, (_, g) =>
        pool.make(rng, `system ${seed}/${g}: `, shape.systemTokens * 4),
      );
      const users = shape.groups * shape.usersPerGroup;
      const history: ChatMessage[][] = Array.from({ length: users }, () => []);
      const turns = new Array<number>(users).fill(0);
      const requests: SimRequest[] = [];
      let id = 0;
      // Warm-up: each group's system prompt once.
      let t = 0;
      for (let g = 0; g < shape.groups; g++) {
        t += 0.5;
        const tpl = template([
          { role: 'system', content: systems[g]! },
          { role: 'user', content: `warm-up ${g}` },
        ]);
        requests.push(simRequest(id++, t, tpl, 1, false));
      }
      const start = t + 5;
      for (const at of arrivals(rng, qps, start, windowS)) {
        const u = Math.floor(rng.next() * users);
        const g = u % shape.groups;
        if (turns[u] === 0 || turns[u]! >= shape.maxTurns) {
          history[u] = [{ role: 'system', content: systems[g]! }];
          turns[u] = 0;
        }
        const qTokens = Math.max(4, Math.round(rng.normal(shape.questionMean, shape.questionSd)));
        const msgs = [
          ...history[u]!,
          { role: 'user', content: pool.make(rng, `u${u} t${turns[u]}: `, qTokens * 4) },
        ];
        const tpl = template(msgs);
        const out = Math.max(16, Math.round(rng.normal(shape.outputMean, shape.outputSd)));
        const answer = pool.make(rng, `a${u}.${turns[u]}: `, out * 4);
        const cacheHashes = textBlockHashes(
          tpl.promptText + answer,
          MODEL,
          BLOCK_TOKENS,
          Number.MAX_SAFE_INTEGER,
        );
        requests.push(simRequest(id++, at, tpl, out, true, { cacheHashes }));
        history[u] = [...msgs, { role: 'assistant', content: answer }];
        turns[u]!++;
      }
      return { requests, windowStartS: start, windowEndS: start + windowS };
    },
  };
}

/** Unique prompts, lognormal lengths (ShareGPT-like): pure load balancing. */
export function noReuse(shape: {
  inputMean: number;
  outputMean: number;
  sigma: number;
  maxTokens: number;
}): WorkloadGenerator {
  return {
    generate(seed, qps, windowS) {
      const rng = new Rng(seed);
      const pool = new TextPool(rng, 100_000);
      const requests: SimRequest[] = [];
      let id = 0;
      const start = 1;
      for (const at of arrivals(rng, qps, start, windowS)) {
        const inTok = Math.min(
          shape.maxTokens,
          Math.max(4, Math.round(rng.lognormal(shape.inputMean, shape.sigma))),
        );
        const outTok = Math.min(
          shape.maxTokens,
          Math.max(1, Math.round(rng.lognormal(shape.outputMean, shape.sigma))),
        );
        const tpl = template([{ role: 'user', content: pool.make(rng, `r${seed}.${id}: `, inTok * 4) }]);
        requests.push(simRequest(id++, at, tpl, outTok, true));
      }
      return { requests, windowStartS: start, windowEndS: start + windowS };
    },
  };
}

/** PD bucket workload: 80% short prompts, 20% long ones, unique text. */
export function longShortMix(shape: {
  shortShare: number;
  shortIn: [number, number];
  longIn: [number, number];
  out: [number, number];
}): WorkloadGenerator {
  return {
    generate(seed, qps, windowS) {
      const rng = new Rng(seed);
      const pool = new TextPool(rng, 300_000);
      const requests: SimRequest[] = [];
      let id = 0;
      const start = 1;
      for (const at of arrivals(rng, qps, start, windowS)) {
        const short = rng.next() < shape.shortShare;
        const [lo, hi] = short ? shape.shortIn : shape.longIn;
        const inTok = rng.int(lo, hi);
        const tpl = template([{ role: 'user', content: pool.make(rng, `r${seed}.${id}: `, inTok * 4) }]);
        requests.push(
          simRequest(id++, at, tpl, rng.int(shape.out[0], shape.out[1]), true, {
            cls: short ? 'short' : 'long',
          }),
        );
      }
      return { requests, windowStartS: start, windowEndS: start + windowS };
    },
  };
}

/** A few hot long prefixes shared by every request (llm-d-router #355 shape). */
export function hotPrefix(shape: {
  prefixes: number;
  prefixTokens: number;
  questionTokens: number;
  outputTokens: number;
}): WorkloadGenerator {
  return {
    generate(seed, qps, windowS) {
      const rng = new Rng(seed);
      const pool = new TextPool(rng, 100_000);
      const prefixes = Array.from({ length: shape.prefixes }, (_, i) =>
        pool.make(rng, `hot ${seed}/${i}: `, shape.prefixTokens * 4),
      );
      const requests: SimRequest[] = [];
      let id = 0;
      const start = 1;
      for (const at of arrivals(rng, qps, start, windowS)) {
        const sys = prefixes[Math.floor(rng.next() * prefixes.length)]!;
        const tpl = template([
          { role: 'system', content: sys },
          { role: 'user', content: pool.make(rng, `q${seed}.${id}: `, shape.questionTokens * 4) },
        ]);
        requests.push(simRequest(id++, at, tpl, shape.outputTokens, true));
      }
      return { requests, windowStartS: start, windowEndS: start + windowS };
    },
  };
}

/**
 * Best achievable prefix hit rate of the measured requests: infinite cache,
 * every block ever computed reusable (compulsory misses only). Per request,
 * the leading blocks already seen in any earlier request (warm-up included)
 * or cached from an earlier turn; token-weighted over measured requests.
 */
export function compulsoryHitRate(requests: readonly SimRequest[]): number {
  const seen = new Set<string>();
  let hit = 0;
  let total = 0;
  const sorted = [...requests].sort((a, b) => a.arrivalS - b.arrivalS);
  for (const r of sorted) {
    let m = 0;
    while (m < r.hashes.length && seen.has(r.hashes[m]!)) m++;
    // A server always computes at least the last token.
    const hitTokens = Math.min(m * BLOCK_TOKENS, r.promptTokens - 1);
    if (r.measured) {
      hit += hitTokens;
      total += r.promptTokens;
    }
    for (const h of r.hashes) seen.add(h);
    if (r.cacheHashes) for (const h of r.cacheHashes) seen.add(h);
  }
  return total === 0 ? 0 : hit / total;
}
