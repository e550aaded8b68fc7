// A FlowController over a memory store and one EndpointPickerConfig, as the
// flow unit tests build it: no band bounds that matter (100 requests a band),
// a 10 s TTL and a poll slow enough (60 s) that only events dispatch.
import { afterEach } from 'vitest';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { Director } from '../../../src/director/director.js';
import { FlowController, type FairShareOptions, type FlowHooks } from '../../../src/flow/flow-controller.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import type { Endpoint, LLMRequest } from '../../../src/scheduling/types.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';

const controllers: FlowController[] = [];
afterEach(() => {
  for (const c of controllers.splice(0)) c.close();
});

/** Builds the store (with `endpoints`), the Director and the FlowController; closed after each test. */
export async function flowOverMemory(configText: string, endpoints: Endpoint[]) {
  const store = new MemoryStateStore();
  await store.replaceEndpoints(endpoints);
  return { store, ...flowOnStore(store, configText) };
}

export interface FlowOnStoreOptions {
  pollMs?: number;
  /** Kick the queue when a response ends, as src/epp/build.ts wires it. */
  kickOnRelease?: boolean;
  /** Fair dispatch across replicas sharing `store` (given the replica's Director). */
  fairShare?: (director: Director) => FairShareOptions | undefined;
  hooks?: FlowHooks;
}

/** A Director and a FlowController on an existing store (one "replica" of it); closed after each test. */
export function flowOnStore(store: MemoryStateStore, configText: string, opts: FlowOnStoreOptions = {}) {
  const loaded = loadConfigText(configText, 't.yaml', builtinRegistry());
  const director: Director = new Director({
    store,
    profile: loaded.profile,
    saturationDetector: loaded.saturationDetector,
    hooks: opts.kickOnRelease ? { onReleased: () => flow.kick() } : undefined,
    // As src/epp/build.ts wires it: only replicas that dispatch fairly wake each other.
    wakeOthersOnRelease: () => flow.othersWaiting(),
  });
  const flow: FlowController = new FlowController({
    settings: {
      maxRequests: 0,
      maxBytes: 0,
      requestTtlMs: 10_000,
      bands: new Map(),
      defaultBand: { maxRequests: 100, maxBytes: 1e9 },
    },
    director,
    saturation: (v) => loaded.saturationDetector.saturation(v),
    pollMs: opts.pollMs ?? 60_000,
    fairShare: opts.fairShare?.(director),
    hooks: opts.hooks,
  });
  controllers.push(flow);
  return { director, flow };
}

/** A completions request of `text` (4 characters a token). */
export const completionsRequest = (id: string, text: string): LLMRequest => ({
  requestId: id,
  model: 'm',
  apiType: 'completions',
  promptText: text,
  promptTokens: text.length / 4,
  stream: false,
  headers: {},
});
