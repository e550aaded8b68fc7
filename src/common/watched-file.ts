// A file whose parsed content is followed while the process runs: fs.watch
// for promptness plus a polling fallback (fs.watch misses some editors'
// atomic renames). The first parse must succeed (it throws to the caller, a
// start-up error); a later failure keeps the last good value and is reported.
// Unchanged content (same JSON) is not reported again.
import { watch, type FSWatcher } from 'node:fs';

export interface WatchedFileOptions {
  /** Called when a re-read fails; the previous value stays in force. */
  onError?: (err: Error) => void;
  /** Polling fallback period. */
  pollMs?: number;
}

export class WatchedFile<T> {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last = '';

  constructor(
    private readonly file: string,
    private readonly read: (file: string) => T,
    private readonly opts: WatchedFileOptions = {},
  ) {}

  start(onChange: (value: T) => void): void {
    const first = this.read(this.file);
    this.last = JSON.stringify(first);
    onChange(first);
    const reread = () => {
      try {
        const next = this.read(this.file);
        const key = JSON.stringify(next);
        if (key === this.last) return;
        this.last = key;
        onChange(next);
      } catch (e) {
        this.opts.onError?.(e as Error);
      }
    };
    try {
      this.watcher = watch(this.file, { persistent: false }, () => setTimeout(reread, 20));
    } catch {
      // Polling below still sees changes.
    }
    this.timer = setInterval(reread, this.opts.pollMs ?? 1_000);
    this.timer.unref();
  }

  stop(): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }
}
