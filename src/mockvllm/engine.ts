// mock-vllm's scheduler: at most `maxNumSeqs` requests run; the rest wait in
// a FIFO queue, which also waits while the KV pool cannot hold its head
// (first come, first served, as vLLM's default policy). The timing of a
// running request (prefill, then one decode step per token) is driven by
// the HTTP layer; the engine only admits, tracks and releases.
import { KvBlockManager, type Allocation } from './kv-cache.js';

export interface EngineJob {
  /** Full-block hashes of the prompt. */
  hashes: Buffer[];
  tokens: ArrayLike<number>;
  promptTokens: number;
  maxTokens: number;
  /** The LoRA adapter the request names (undefined: the base model). */
  adapter?: string;
}

export interface Admission {
  allocation: Allocation;
  /** Prompt tokens served from the prefix cache. */
  cachedTokens: number;
  queuedMs: number;
  adapter?: string;
}

interface Waiter {
  job: EngineJob;
  blocksNeeded: number;
  enqueuedAt: number;
  resolve: (a: Admission) => void;
  reject: (e: Error) => void;
}

export class CapacityError extends Error {
  override name = 'CapacityError';
}

export class Engine {
  private readonly queue: Waiter[] = [];
  private runningCount = 0;
  /** Running requests per LoRA adapter. */
  private readonly runningAdapters = new Map<string, number>();

  constructor(
    readonly kv: KvBlockManager,
    readonly maxNumSeqs: number,
  ) {}

  get running(): number {
    return this.runningCount;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** LoRA adapters with running requests, and with waiting ones (vllm:lora_requests_info). */
  loraAdapters(): { running: string[]; waiting: string[] } {
    const waiting = new Set<string>();
    for (const w of this.queue) if (w.job.adapter) waiting.add(w.job.adapter);
    return { running: [...this.runningAdapters.keys()], waiting: [...waiting] };
  }

  /** Anonymous blocks a job needs besides its full prompt blocks: the partial last block and the output. */
  private anonymousBlocks(job: EngineJob): number {
    const bs = this.kv.blockSize;
    return Math.ceil((job.promptTokens + job.maxTokens) / bs) - job.hashes.length;
  }

  /**
   * Queues a job; resolves when it is admitted (running). Rejects at once
   * with CapacityError when the job could never fit the KV pool, and with
   * the signal's reason when aborted while waiting.
   */
  submit(job: EngineJob, signal?: AbortSignal): Promise<Admission> {
    const anonymous = this.anonymousBlocks(job);
    const blocksNeeded = job.hashes.length + anonymous;
    if (blocksNeeded > this.kv.totalBlocks) {
      return Promise.reject(
        new CapacityError(
          `the request needs ${blocksNeeded} KV blocks (${job.promptTokens} prompt + ${job.maxTokens} output tokens) but the cache holds ${this.kv.totalBlocks}`,
        ),
      );
    }
    return new Promise<Admission>((resolve, reject) => {
      const w: Waiter = { job, blocksNeeded, enqueuedAt: performance.now(), resolve, reject };
      this.queue.push(w);
      if (signal) {
        const onAbort = () => {
          const i = this.queue.indexOf(w);
          if (i >= 0) {
            this.queue.splice(i, 1);
            reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
            this.admit();
          }
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }
      this.admit();
    });
  }

  private admit(): void {
    while (this.runningCount < this.maxNumSeqs && this.queue.length > 0) {
      const w = this.queue[0]!;
      const allocation = this.kv.allocate(w.job.hashes, w.job.tokens, this.anonymousBlocks(w.job));
      if (!allocation) break;
      this.queue.shift();
      this.runningCount++;
      const adapter = w.job.adapter;
      if (adapter) this.runningAdapters.set(adapter, (this.runningAdapters.get(adapter) ?? 0) + 1);
      w.resolve({
        adapter,
        allocation,
        cachedTokens: allocation.hitBlocks * this.kv.blockSize,
        queuedMs: performance.now() - w.enqueuedAt,
      });
    }
  }

  /** Ends a running job (finished, failed or aborted) and admits waiters. */
  finish(a: Admission): void {
    if (a.allocation.released) return;
    this.kv.release(a.allocation);
    this.runningCount--;
    if (a.adapter) {
      const n = (this.runningAdapters.get(a.adapter) ?? 1) - 1;
      if (n > 0) this.runningAdapters.set(a.adapter, n);
      else this.runningAdapters.delete(a.adapter);
    }
    this.admit();
  }
}
