// Shared pieces of the simulator's unit tests: a tiny server, a request
// builder and engines that report to nobody.
import { Engine, type EngineHooks } from '../../bench/sim/engine.js';
import { EventQueue } from '../../bench/sim/event-queue.js';
import { Q32_H100X2, type ServerParams } from '../../bench/sim/params.js';
import type { SimRequest } from '../../bench/sim/workload-types.js';

/** A small server: 40 blocks of 64 tokens, 8 sequences, 512-token steps. */
export const TINY: ServerParams = {
  ...Q32_H100X2,
  name: 'tiny',
  kvBlocks: 40,
  maxNumSeqs: 8,
  maxBatchedTokens: 512,
};

/** Engine hooks that ignore every event. */
export const NO_HOOKS: EngineHooks = {
  firstToken: () => {},
  finished: () => {},
  prefilled: () => {},
  kvEvents: () => {},
  tokens: () => {},
};

/** A measured request of `hashes.length` 64-token blocks plus `extraTokens`. */
export function simRequest(id: number, hashes: string[], extraTokens = 10, outputTokens = 2): SimRequest {
  const promptTokens = hashes.length * 64 + extraTokens;
  return {
    id,
    arrivalS: 0,
    req: {
      requestId: `r${id}`,
      model: 'm',
      apiType: 'chat',
      promptText: '',
      promptTokens,
      stream: true,
      headers: {},
    },
    promptTokens,
    outputTokens,
    hashes,
    measured: true,
  };
}

/** A holds blocks a, b (cached, unreferenced; usage 0); B decodes one 5-block sequence (usage 5/40). */
export function twoEngines(): [Engine, Engine] {
  const q = new EventQueue();
  const a = new Engine('A', 'agg', TINY, q, NO_HOOKS);
  const b = new Engine('B', 'agg', TINY, q, NO_HOOKS);
  a.submit(simRequest(1, ['a', 'b']));
  for (let ev = q.pop(); ev; ev = q.pop()) void ev.run();
  b.submit(simRequest(2, ['z1', 'z2', 'z3', 'z4'], 10, 1000));
  for (let i = 0; i < 3; i++) void q.pop()!.run();
  return [a, b];
}
