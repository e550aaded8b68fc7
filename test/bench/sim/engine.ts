// One simulated model server (vLLM-like) in virtual time:
//  - a paged KV cache of `kvBlocks` blocks; full prompt blocks are cached
//    under their chained hash and reused by later prompts (prefix caching);
//    blocks no running sequence references stay cached and are evicted
//    least-recently-used first when space is needed;
//  - continuous batching: each step serves the running sequences first
//    (one token per decoding sequence, the next chunk of a partial
//    prefill), then admits waiting ones FCFS while the token budget and
//    max-num-seqs allow (chunked prefill);
//  - preemption by recompute: when a block cannot be found, the newest
//    running sequence is evicted back to the head of the queue;
//  - bench what-if (`schedPriority` set; off by default): vLLM's
//    `--scheduling-policy priority` (V1 scheduler): the waiting queue is
//    ordered by priority, then by arrival at the engine; running sequences
//    still go first in the order they were admitted and are never preempted
//    for a waiting one; when a block cannot be found the victim is the
//    running sequence of the lowest priority, the latest arrival among
//    equals, and it goes back into the ordered queue;
//  - step time = overhead + prefill tokens / rate + decode(kv usage, seqs).
// Roles: 'agg' does everything; 'prefill' stops after the prompt (the KV
// goes to a decode server); 'decode' receives sequences whose KV arrived.
import type { EventQueue } from './event-queue.js';
import type { ServerParams } from './params.js';
import type { SimRequest } from './workload-types.js';

export type EngineRole = 'agg' | 'prefill' | 'decode';

interface CachedBlock {
  ref: number;
}

export interface Seq {
  sr: SimRequest;
  /** Tokens whose KV is computed (or transferred). */
  computed: number;
  /** Tokens to compute before decoding (prompt, plus output after a preemption). */
  target: number;
  /** Output tokens sampled so far. */
  generated: number;
  held: string[];
  privateBlocks: number;
  /** Prompt tokens found in the cache at first admission (-1: not admitted yet). */
  hitTokens: number;
  preemptions: number;
  /** Tokens this step computes for it (planning scratch). */
  chunk: number;
  /** Its prompt blocks are counted in the server's incoming set. */
  incoming: boolean;
  /** Virtual time the engine received it (vLLM's arrival_time). */
  arrivalS: number;
}

export interface EngineHooks {
  firstToken(seq: Seq, t: number): void;
  finished(seq: Seq, t: number): void;
  /** Prefill role: the prompt is computed and its KV can be sent. */
  prefilled(seq: Seq, t: number): void;
  /** KV events of one step (BlockStored / BlockRemoved hashes). */
  kvEvents(engine: Engine, stored: string[], removed: string[], t: number): void;
  /** Output tokens produced by a step ending at t. */
  tokens(n: number, t: number): void;
  /** The sequences that sampled a token in the step ending at t (step-clock observation). */
  sampled?(engine: Engine, seqs: readonly Seq[], t: number): void;
}

export class Engine {
  readonly cache = new Map<string, CachedBlock>();
  /** Prompt blocks of sequences queued or prefilling here (the oracle's view of what is coming). */
  private readonly incoming = new Map<string, number>();
  /** Unreferenced cached blocks, least recently used first. */
  private readonly lru = new Map<string, CachedBlock>();
  usedBlocks = 0;
  readonly waiting: Seq[] = [];
  readonly running: Seq[] = [];
  private busy = false;
  /** Virtual time the step in progress ends (valid while busy; the oracle's TTFT prediction). */
  private stepEndS = 0;
  private stored: string[] = [];
  private removed: string[] = [];
  // Counters.
  busyTimeS = 0;
  preemptions = 0;
  steps = 0;
  promptTokensSeen = 0;
  hitTokensSeen = 0;
  /**
   * When set (bench analysis only), every step appends its start and end
   * time, seconds: [start0, end0, start1, end1, ...], in order.
   */
  stepLog: number[] | undefined;
  /**
   * When set (bench analysis only, prio-probe): called as each step is
   * planned, with the running sequences (their `chunk` is this step's
   * tokens), the step's start and its duration.
   */
  onStep: ((engine: Engine, running: readonly Seq[], startS: number, dt: number) => void) | undefined;
  /** Prompt tokens prefilled (recomputation after a preemption included), and output tokens sampled. */
  prefilledTokens = 0;
  generatedTokens = 0;
  /**
   * Bench what-if: when set, the engine schedules as vLLM's
   * `--scheduling-policy priority` (header comment), with this request
   * priority, higher first (vLLM's field is the opposite: lower first).
   */
  schedPriority: ((sr: SimRequest) => number) | undefined;

  constructor(
    readonly id: string,
    readonly role: EngineRole,
    readonly p: ServerParams,
    private readonly q: EventQueue,
    private readonly hooks: EngineHooks,
  ) {}

  get freeBlocks(): number {
    return this.p.kvBlocks - this.usedBlocks - this.lru.size;
  }

  /** vLLM's kv_cache_usage: referenced blocks / all blocks. */
  get kvUsage(): number {
    return this.usedBlocks / this.p.kvBlocks;
  }

  /**
   * Leading prompt tokens of `hashes` this server holds now or is about to
   * compute for a queued or prefilling request (exact, for the oracle).
   */
  cachedPrefixTokens(hashes: readonly string[]): number {
    let i = 0;
    while (i < hashes.length && (this.cache.has(hashes[i]!) || this.incoming.has(hashes[i]!))) i++;
    return i * this.p.blockSize;
  }

  private trackIncoming(seq: Seq, add: boolean): void {
    if (seq.incoming === add) return;
    seq.incoming = add;
    for (const h of seq.sr.hashes) {
      const n = (this.incoming.get(h) ?? 0) + (add ? 1 : -1);
      if (n > 0) this.incoming.set(h, n);
      else this.incoming.delete(h);
    }
  }

  /** Seconds until the step in progress ends (0 when idle). */
  stepRemainingS(): number {
    return this.busy ? Math.max(0, this.stepEndS - this.q.now) : 0;
  }

  /** Uncached prompt tokens still to prefill here (queued and partial), for the oracle. */
  pendingPrefillTokens(): number {
    let n = 0;
    for (const s of this.waiting) n += s.target - s.computed;
    for (const s of this.running) if (s.computed < s.target) n += s.target - s.computed;
    return n;
  }

  /**
   * The oracle's exact TTFT, seconds from now, of a new request whose
   * `uncached` prompt tokens are still to compute here, if it joined the
   * back of the queue now and nothing else arrived: the engine's own
   * step planning (running sequences first, then FCFS admission within the
   * token budget and max-num-seqs, sequences leaving when their output is
   * done) replayed on token counts. Not modelled: KV capacity (admission
   * stalls, preemption) and the usage growth of the decode step, so it is
   * a lower bound when the cache is full. Waiting requests prefill what the
   * cache does not hold now. Capped at `maxSteps` steps (Infinity past it).
   */
  predictTtftS(uncached: number, maxSteps = 4000): number {
    const p = this.p;
    let t = this.busy ? Math.max(0, this.stepEndS - this.q.now) : 0;
    // pre = prompt tokens still to compute after the step in progress; out = outputs still to sample.
    const run: { pre: number; out: number }[] = [];
    for (const s of this.running) {
      const pre = Math.max(0, s.target - s.computed - s.chunk);
      const sampled = s.generated + (s.chunk > 0 && s.computed + s.chunk >= s.target ? 1 : 0);
      const out = s.sr.outputTokens - sampled;
      if (out > 0 || pre > 0) run.push({ pre, out: Math.max(1, out) });
    }
    const queue: { pre: number; out: number; me: boolean }[] = [];
    for (const s of this.waiting) {
      let hit = 0;
      if (s.computed === 0) {
        const hashes = s.sr.hashes;
        const maxBlocks = Math.floor((s.target - 1) / p.blockSize);
        while (hit < hashes.length && hit < maxBlocks && this.cache.has(hashes[hit]!)) hit++;
      }
      const pre = Math.max(1, s.target - Math.max(s.computed, hit * p.blockSize));
      queue.push({ pre, out: Math.max(1, s.sr.outputTokens - s.generated), me: false });
    }
    const me = { pre: Math.max(1, uncached), out: 1, me: true };
    queue.push(me);
    const active: { pre: number; out: number; me?: boolean; chunk?: number }[] = run;
    let qi = 0;
    for (let step = 0; step < maxSteps; step++) {
      let budget = p.maxBatchedTokens;
      let prefill = 0;
      let decoding = 0;
      for (const a of active) {
        a.chunk = 0;
        if (budget <= 0) continue;
        a.chunk = a.pre > 0 ? Math.min(a.pre, budget) : 1;
        budget -= a.chunk;
        if (a.pre > 0) prefill += a.chunk;
        else decoding++;
      }
      while (qi < queue.length && active.length < p.maxNumSeqs && budget > 0) {
        const a = { ...queue[qi++]!, chunk: 0 };
        a.chunk = Math.min(a.pre, budget);
        budget -= a.chunk;
        prefill += a.chunk;
        active.push(a);
      }
      t +=
        p.stepOverheadS +
        prefill / p.prefillTokensPerS +
        (decoding > 0 ? p.decodeBaseS + p.decodeKvS * this.kvUsage + p.decodePerSeqS * decoding : 0);
      let w = 0;
      for (const a of active) {
        const c = a.chunk ?? 0;
        if (a.pre > 0) {
          a.pre -= c;
          if (a.pre === 0) {
            if (a.me) return t;
            a.out--;
          }
        } else if (c > 0) a.out--;
        if (a.out > 0 || a.pre > 0) active[w++] = a;
      }
      active.length = w;
    }
    return Infinity;
  }

  /** A new request (agg/prefill) or a sequence whose KV was transferred (decode). */
  submit(sr: SimRequest, kvReady = false): void {
    const seq: Seq = {
      sr,
      computed: kvReady ? sr.promptTokens : 0,
      target: sr.promptTokens,
      generated: 0,
      held: [],
      privateBlocks: 0,
      // Hits of a transferred sequence were counted on its prefill server.
      hitTokens: kvReady ? 0 : -1,
      preemptions: 0,
      chunk: 0,
      incoming: false,
      arrivalS: this.q.now,
    };
    if (!kvReady && this.role !== 'decode') this.trackIncoming(seq, true);
    if (this.role !== 'decode') {
      sr.engineSubmitS = this.q.now;
      sr.stepFreeS = this.busy ? this.stepEndS : this.q.now;
    }
    this.enqueue(seq);
    this.kick();
  }

  /** Priority order: higher priority first, then earlier arrival at the engine. */
  private before(a: Seq, b: Seq): boolean {
    const pa = this.schedPriority!(a.sr);
    const pb = this.schedPriority!(b.sr);
    return pa !== pb ? pa > pb : a.arrivalS < b.arrivalS;
  }

  /** Into the waiting queue: the back (FCFS) or its place in priority order. */
  private enqueue(seq: Seq): void {
    if (!this.schedPriority) {
      this.waiting.push(seq);
      return;
    }
    let i = this.waiting.length;
    while (i > 0 && this.before(seq, this.waiting[i - 1]!)) i--;
    this.waiting.splice(i, 0, seq);
  }

  private kick(): void {
    if (this.busy) return;
    if (this.waiting.length === 0 && this.running.length === 0) return;
    this.planStep();
  }

  // --- blocks ---

  private alloc(k: number): boolean {
    while (this.freeBlocks < k && this.lru.size > 0) {
      this.evict(this.lru.keys().next().value as string);
    }
    if (this.freeBlocks < k) return false;
    this.usedBlocks += k;
    return true;
  }

  private evict(h: string): void {
    this.lru.delete(h);
    this.cache.delete(h);
    this.removed.push(h);
  }

  private ref(h: string, b: CachedBlock): void {
    if (b.ref === 0) {
      this.lru.delete(h);
      this.usedBlocks++;
    }
    b.ref++;
  }

  private unref(h: string): void {
    const b = this.cache.get(h)!;
    b.ref--;
    if (b.ref === 0) {
      this.usedBlocks--;
      this.lru.set(h, b);
    }
  }

  private releaseBlocks(seq: Seq): void {
    for (const h of seq.held) this.unref(h);
    seq.held = [];
    this.usedBlocks -= seq.privateBlocks;
    seq.privateBlocks = 0;
  }

  private blocksOf(seq: Seq): number {
    return seq.held.length + seq.privateBlocks;
  }

  /** Grows seq's blocks to cover `tokens` tokens; false when the cache is full. */
  private growTo(seq: Seq, tokens: number): boolean {
    const need = Math.ceil(tokens / this.p.blockSize) - this.blocksOf(seq);
    if (need <= 0) return true;
    if (!this.alloc(need)) return false;
    seq.privateBlocks += need;
    return true;
  }

  /** Turns computed full prompt blocks (and, at the end, output blocks) into cached blocks. */
  private publish(seq: Seq, hashes: readonly string[], fromBlock: number, toBlock: number): void {
    for (let j = fromBlock; j < toBlock && j < hashes.length; j++) {
      const h = hashes[j]!;
      if (this.cache.has(h) || seq.privateBlocks === 0) continue; // a duplicate stays private
      seq.privateBlocks--;
      this.cache.set(h, { ref: 1 });
      seq.held.push(h);
      this.stored.push(h);
    }
  }

  /** Index in `running` of the next preemption victim: the newest (FCFS), or the lowest priority, latest arrival among equals. */
  private victimIndex(): number {
    let at = this.running.length - 1;
    if (this.schedPriority) {
      for (let i = at - 1; i >= 0; i--) if (this.before(this.running[at]!, this.running[i]!)) at = i;
    }
    return at;
  }

  /** Evicts running[at] back to the queue: its head (FCFS) or its place in priority order. */
  private preempt(at: number): Seq {
    const victim = this.running.splice(at, 1)[0]!;
    this.releaseBlocks(victim);
    victim.target = victim.sr.promptTokens + victim.generated;
    victim.computed = 0;
    victim.chunk = 0;
    victim.preemptions++;
    this.preemptions++;
    if (this.schedPriority) this.enqueue(victim);
    else this.waiting.unshift(victim);
    return victim;
  }

  // --- the step loop ---

  private planStep(): void {
    const p = this.p;
    let budget = p.maxBatchedTokens;
    let prefillTokens = 0;
    let decoding = 0;
    // Running sequences first, oldest first.
    for (let i = 0; i < this.running.length; i++) {
      const s = this.running[i]!;
      s.chunk = 0;
      if (budget <= 0) continue;
      let want = s.computed < s.target ? Math.min(s.target - s.computed, budget) : 1;
      let ok = this.growTo(s, s.computed + want);
      while (!ok) {
        // Preempt the newest (FCFS: never one planned already); when that is s itself it was the last one planned.
        if (this.running.length === 0) break;
        const at = this.victimIndex();
        const v = this.running[at]!;
        if (at < i) {
          // Priority what-if: a victim planned earlier in this step gives its tokens back.
          budget += v.chunk;
          if (v.computed < v.target) prefillTokens -= v.chunk;
          else if (v.chunk > 0) decoding--;
          i--;
        }
        this.preempt(at);
        if (v === s) break;
        want = s.computed < s.target ? Math.min(s.target - s.computed, budget) : 1;
        ok = this.growTo(s, s.computed + want);
      }
      if (!ok) {
        // FCFS: s was the newest, nothing after it. Priority: s (the lowest
        // priority) went back to the queue; vLLM's next step plans the
        // running sequences after it, this one goes on with them at once.
        if (this.schedPriority && this.running[i] !== s) {
          i--;
          continue;
        }
        break;
      }
      s.chunk = want;
      budget -= want;
      if (s.computed < s.target) prefillTokens += want;
      else decoding++;
    }
    // Then waiting sequences, FCFS.
    while (this.waiting.length > 0 && this.running.length < p.maxNumSeqs && budget > 0) {
      const s = this.waiting[0]!;
      const lookup = s.computed === 0;
      // Prefix cache lookup (never for sequences whose KV was transferred in).
      if (lookup) {
        const hashes = s.sr.hashes;
        const maxBlocks = Math.floor((s.target - 1) / p.blockSize); // keep >= 1 token to compute
        let m = 0;
        while (m < hashes.length && m < maxBlocks) {
          const b = this.cache.get(hashes[m]!);
          if (!b) break;
          this.ref(hashes[m]!, b);
          s.held.push(hashes[m]!);
          m++;
        }
        s.computed = m * p.blockSize;
      }
      const want = s.computed < s.target ? Math.min(s.target - s.computed, budget) : 1;
      if (!this.growTo(s, s.computed + want)) {
        // No room: undo the lookup, wait for running sequences to free blocks.
        this.releaseBlocks(s);
        if (lookup) s.computed = 0;
        break;
      }
      if (s.hitTokens < 0) {
        if (s.sr.admitS === undefined) s.sr.admitS = this.q.now;
        // vLLM counts prefix-cache queries and hits when a request is first scheduled.
        s.hitTokens = lookup ? s.computed : 0;
        this.promptTokensSeen += s.sr.promptTokens;
        this.hitTokensSeen += s.hitTokens;
      }
      this.waiting.shift();
      this.running.push(s);
      s.chunk = want;
      budget -= want;
      if (s.computed < s.target) prefillTokens += want;
      else decoding++;
    }
    if (prefillTokens === 0 && decoding === 0) {
      // Nothing fits (all blocks held by waiting-for-nothing); should not happen
      // with sane sizes, but never spin.
      this.busy = false;
      return;
    }
    const dt =
      p.stepOverheadS +
      prefillTokens / p.prefillTokensPerS +
      (decoding > 0 ? p.decodeBaseS + p.decodeKvS * this.kvUsage + p.decodePerSeqS * decoding : 0);
    this.busy = true;
    this.stepEndS = this.q.now + dt;
    this.steps++;
    this.prefilledTokens += prefillTokens;
    this.busyTimeS += dt;
    if (this.stepLog) this.stepLog.push(this.q.now, this.q.now + dt);
    this.onStep?.(this, this.running, this.q.now, dt);
    this.q.after(dt, () => this.endStep());
  }

  private endStep(): void {
    const t = this.q.now;
    const bs = this.p.blockSize;
    let produced = 0;
    const done: Seq[] = [];
    const sampled: Seq[] | undefined = this.hooks.sampled ? [] : undefined;
    for (const s of this.running) {
      const c = s.chunk;
      if (c === 0) continue;
      s.chunk = 0;
      if (s.computed < s.target) {
        const before = Math.floor(s.computed / bs);
        if (this.role !== 'decode' && s.generated === 0) s.sr.prefillSteps = (s.sr.prefillSteps ?? 0) + 1;
        s.computed += c;
        if (this.role !== 'decode') this.publish(s, s.sr.hashes, before, Math.floor(s.computed / bs));
        if (s.computed < s.target) continue;
        this.trackIncoming(s, false);
        if (this.role === 'prefill') {
          done.push(s);
          continue;
        }
        // The step that completes the prompt samples the next token.
        s.generated++;
        produced++;
        sampled?.push(s);
        if (s.generated === 1) this.hooks.firstToken(s, t);
      } else {
        s.computed++;
        s.generated++;
        produced++;
        sampled?.push(s);
        if (s.generated === 1) this.hooks.firstToken(s, t);
      }
      if (s.generated >= s.sr.outputTokens) done.push(s);
    }
    for (const s of done) {
      this.running.splice(this.running.indexOf(s), 1);
      const cacheHashes = s.sr.cacheHashes;
      if (cacheHashes && this.role === 'agg') {
        this.publish(s, cacheHashes, s.sr.hashes.length, Math.floor(s.computed / bs));
      }
      this.releaseBlocks(s);
      if (this.role === 'prefill') this.hooks.prefilled(s, t);
      else this.hooks.finished(s, t);
    }
    this.generatedTokens += produced;
    if (produced > 0) this.hooks.tokens(produced, t);
    if (sampled && sampled.length > 0) this.hooks.sampled!(this, sampled, t);
    if (this.stored.length > 0 || this.removed.length > 0) {
      this.hooks.kvEvents(this, this.stored, this.removed, t);
      this.stored = [];
      this.removed = [];
    }
    this.busy = false;
    this.kick();
  }

  /** Invariant check for tests: block accounting adds up. */
  checkInvariants(): void {
    let referenced = 0;
    let privateBlocks = 0;
    const refs = new Map<string, number>();
    for (const s of [...this.running, ...this.waiting]) {
      privateBlocks += s.privateBlocks;
      for (const h of s.held) refs.set(h, (refs.get(h) ?? 0) + 1);
    }
    for (const [h, b] of this.cache) {
      const r = refs.get(h) ?? 0;
      if (b.ref !== r) throw new Error(`block ${h}: ref ${b.ref} but ${r} sequences hold it`);
      if (r > 0) referenced++;
      if ((r === 0) !== this.lru.has(h)) throw new Error(`block ${h}: LRU membership wrong`);
    }
    if (this.usedBlocks !== referenced + privateBlocks) {
      throw new Error(`usedBlocks ${this.usedBlocks} != referenced ${referenced} + private ${privateBlocks}`);
    }
    if (this.usedBlocks + this.lru.size > this.p.kvBlocks)
      throw new Error('more blocks in use than the cache has');
    if (this.running.length > this.p.maxNumSeqs) throw new Error('more running sequences than max-num-seqs');
  }
}
