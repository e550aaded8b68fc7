// How every function stops: the first SIGTERM/SIGINT runs `stop` (drain,
// close), a second one exits at once. Shared by the functions' entries.

export interface StopOptions {
  /** Told which signal arrived, before `stop` runs. */
  onSignal?(signal: NodeJS.Signals): void;
  /** A second signal while stopping: exit now with 130 (default), after this. */
  onSecondSignal?(signal: NodeJS.Signals): void;
}

/** Resolves with `stop`'s exit code once a signal arrived and `stop` finished. */
export function stopOnSignal(stop: () => Promise<number>, opts: StopOptions = {}): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (sig: NodeJS.Signals) => {
      if (stopping) {
        opts.onSecondSignal?.(sig);
        process.exit(130);
      }
      stopping = true;
      opts.onSignal?.(sig);
      stop().then(resolve, () => resolve(1));
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
