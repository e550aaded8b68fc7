// A list-then-watch loop for one Kubernetes collection, like client-go's
// reflector. client-node's informer stops for good on any non-410 watch
// error, so this loop owns the restarts instead:
//   list (full set, resourceVersion) -> watch from that version with
//   bookmarks -> on a normal end re-watch from the last version seen;
//   on 410 Gone relist at once; on any other error or a dropped connection
//   back off and relist (a relist also catches what happened while the API
//   server was away).
// The transport is injected (`list`, `watch`) so the loop is testable and
// the same code serves pods and InferencePools.

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
  /** Path of the collection to watch, e.g. /api/v1/namespaces/ns/pods. */
  watchPath: string;
  /** Extra query parameters for the watch (labelSelector, fieldSelector). */
  watchQuery?: Record<string, string>;
}

/** Starts one watch request; resolves to something that can abort it. */
export type WatchFn = (
  path: string,
  query: Record<string, string | number | boolean>,
  onEvent: (type: string, obj: unknown) => void,
  onDone: (err: unknown) => void,
) => Promise<{ abort(): void }>;

export interface BackoffOptions {
  /** First delay after a failure (ms). */
  initialMs?: number;
  /** Cap of the doubling delay (ms). */
  maxMs?: number;
}

export interface ListWatchOptions<T> {
  /** For logs and errors: "pods", "inferencepools". */
  what: string;
  list: () => Promise<ListResult<T>>;
  watch: WatchFn;
  onList: (items: T[]) => void;
  onEvent: (type: WatchEventType, obj: T) => void;
  onError: (err: Error) => void;
  backoff?: BackoffOptions;
  /** Server-side watch timeout; the loop re-watches when it ends. */
  watchTimeoutSeconds?: number;
  /** No byte (event or bookmark) for this long => the connection is presumed dead. */
  idleTimeoutMs?: number;
  /** A list that takes longer than this counts as failed. */
  listTimeoutMs?: number;
}

type WatchOutcome =
  | { kind: 'gone' }
  | { kind: 'ended'; healthy: boolean }
  | { kind: 'error'; err: Error }
  | { kind: 'stopped' };

/** Watches shorter than this that end on their own count as failures (no hot loop). */
const MIN_HEALTHY_WATCH_MS = 1_000;

export class ListWatch<T> {
  private stopped = false;
  private running: Promise<void> | undefined;
  private resourceVersion = '';
  private abortWatch: (() => void) | undefined;
  private wake: (() => void) | undefined;
  private failures = 0;
  /** Number of completed lists (tests and health read it). */
  lists = 0;

  constructor(private readonly o: ListWatchOptions<T>) {}

  start(): void {
    if (this.running) return;
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.abortWatch?.();
    this.wake?.();
    await this.running;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      let listed: ListResult<T>;
      try {
        listed = await this.withTimeout(this.o.list(), this.o.listTimeoutMs ?? 30_000);
      } catch (e) {
        if (this.stopped) return;
        this.o.onError(new Error(`list ${this.o.what} failed: ${describe(e)}`, { cause: e }));
        await this.backoff();
        continue;
      }
      if (this.stopped) return;
      this.lists += 1;
      this.resourceVersion = listed.resourceVersion;
      this.o.onList(listed.items);
      // Watch from the listed version until the version is gone or a failure asks for a relist.
      for (;;) {
        const outcome = await this.watchOnce(listed.watchPath, listed.watchQuery ?? {});
        if (outcome.kind === 'stopped' || this.stopped) return;
        if (outcome.kind === 'gone') break; // relist now: our version is too old
        if (outcome.kind === 'ended') {
          if (outcome.healthy) {
            this.failures = 0;
            continue;
          }
          // Ended at once: treat as a failure so a flapping server is not hammered.
          this.o.onError(new Error(`watch ${this.o.what} closed right after opening`));
          await this.backoff();
          continue;
        }
        this.o.onError(new Error(`watch ${this.o.what} failed: ${outcome.err.message}`));
        await this.backoff();
        break; // relist: events may have been missed while the connection was down
      }
    }
  }

  private watchOnce(path: string, extra: Record<string, string>): Promise<WatchOutcome> {
    return new Promise<WatchOutcome>((resolve) => {
      const openedAt = Date.now();
      let events = 0;
      let settled = false;
      let handle: { abort(): void } | undefined;
      let idle: NodeJS.Timeout | undefined;
      const finish = (o: WatchOutcome) => {
        if (settled) return;
        settled = true;
        if (idle) clearTimeout(idle);
        this.abortWatch = undefined;
        handle?.abort();
        resolve(o);
      };
      const idleMs = this.o.idleTimeoutMs ?? ((this.o.watchTimeoutSeconds ?? 300) + 60) * 1_000;
      const touch = () => {
        if (idle) clearTimeout(idle);
        idle = setTimeout(
          () => finish({ kind: 'error', err: new Error(`no data for ${idleMs} ms`) }),
          idleMs,
        );
        idle.unref();
      };
      this.abortWatch = () => finish({ kind: 'stopped' });
      touch();
      const query: Record<string, string | number | boolean> = {
        ...extra,
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: true,
        timeoutSeconds: this.o.watchTimeoutSeconds ?? 300,
      };
      const onEvent = (type: string, obj: unknown) => {
        if (settled) return;
        touch();
        if (type === 'ERROR') {
          const status = obj as { code?: number; message?: string; reason?: string } | undefined;
          if (status?.code === 410 || status?.reason === 'Expired' || status?.reason === 'Gone') {
            finish({ kind: 'gone' });
          } else {
            finish({
              kind: 'error',
              err: new Error(`ERROR event ${status?.code ?? ''} ${status?.message ?? JSON.stringify(obj)}`),
            });
          }
          return;
        }
        const rv = (obj as { metadata?: { resourceVersion?: string } } | undefined)?.metadata
          ?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (type === 'BOOKMARK') return; // only moves our version forward
        if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED') {
          events += 1;
          this.o.onEvent(type, obj as T);
        }
      };
      const onDone = (err: unknown) => {
        if (settled) return;
        if (statusCode(err) === 410) return finish({ kind: 'gone' });
        if (err) return finish({ kind: 'error', err: new Error(describe(err)) });
        finish({ kind: 'ended', healthy: events > 0 || Date.now() - openedAt >= MIN_HEALTHY_WATCH_MS });
      };
      this.o.watch(path, query, onEvent, onDone).then(
        (h) => {
          if (settled) h.abort();
          else handle = h;
        },
        (err: unknown) => onDone(err ?? new Error('watch failed')),
      );
    });
  }

  private async backoff(): Promise<void> {
    const initial = this.o.backoff?.initialMs ?? 250;
    const max = this.o.backoff?.maxMs ?? 10_000;
    const base = Math.min(max, initial * 2 ** this.failures);
    this.failures = Math.min(this.failures + 1, 30);
    const ms = base * (0.8 + Math.random() * 0.4); // jitter: replicas do not retry in step
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
    });
  }

  private withTimeout<R>(p: Promise<R>, ms: number): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      const cancel = () => {
        clearTimeout(t);
        reject(new Error('stopped'));
      };
      const prevWake = this.wake;
      this.wake = cancel;
      p.then(
        (v) => {
          clearTimeout(t);
          if (this.wake === cancel) this.wake = prevWake;
          resolve(v);
        },
        (e: unknown) => {
          clearTimeout(t);
          if (this.wake === cancel) this.wake = prevWake;
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }
}

/** HTTP status of a client-node error (ApiException.code or Watch's statusCode). */
export function statusCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.statusCode === 'number') return e.statusCode;
  if (typeof e.code === 'number') return e.code;
  return undefined;
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const code = statusCode(err);
    const cause = (err as { cause?: unknown }).cause;
    const causeMsg = cause instanceof Error ? ` (${cause.message})` : '';
    const msg = err.message.split('\n')[0] ?? '';
    return `${code !== undefined ? `HTTP ${code}: ` : ''}${msg}${causeMsg}`;
  }
  return String(err);
}
