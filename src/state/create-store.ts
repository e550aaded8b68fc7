// Picks the StateStore backend from --redis-url: absent -> in-memory.
import { MemoryStateStore } from './memory-store.js';
import type { StateStore } from './store.js';

export interface CreateStoreOptions {
  redisUrl?: string;
  /** InferencePool (or demo stack) name: Redis keys are namespaced by it. */
  pool: string;
}

export async function createStateStore(opts: CreateStoreOptions): Promise<StateStore> {
  if (!opts.redisUrl) return new MemoryStateStore();
  // The Redis backend is wired here when it lands (src/state/redis-store.ts).
  throw new Error('Redis state store is not available in this build');
}
