// Starts the demo's child processes (`node bin/hermes-router.js <fn> ...`,
// the real functions), sends each one's output to a log file, notices a
// child that dies, and stops them all: SIGTERM, then SIGKILL for any that
// linger. An `exit` hook kills what is left even if the demo itself fails.
// Each child leads its own process group: a terminal's Ctrl-C then reaches
// only the demo, which can still ask the gateway and the EPP for the final
// summary before it stops them, and a stop signal reaches anything a child
// may have started itself.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { ProcessSpec } from './topology.js';

export interface Child {
  spec: ProcessSpec;
  proc: ChildProcess;
  logFile: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface SupervisorOptions {
  cliPath: string;
  logDir: string;
  /** Called once when a child exits while the stack is supposed to be running. */
  onUnexpectedExit: (child: Child, code: number | null, signal: NodeJS.Signals | null) => void;
  env?: NodeJS.ProcessEnv;
}

export class Supervisor {
  private readonly children: Child[] = [];
  private stopping = false;
  private readonly logs: WriteStream[] = [];
  private readonly onExit = () => this.killAllNow();

  constructor(private readonly opts: SupervisorOptions) {
    process.on('exit', this.onExit);
  }

  list(): readonly Child[] {
    return this.children;
  }

  start(spec: ProcessSpec): Child {
    const logFile = join(this.opts.logDir, `${spec.name}.log`);
    const log = createWriteStream(logFile, { flags: 'a' });
    this.logs.push(log);
    const proc = spawn(process.execPath, [this.opts.cliPath, spec.fn, ...spec.args], {
      env: { ...process.env, ...this.opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    proc.stdout!.pipe(log, { end: false });
    proc.stderr!.pipe(log, { end: false });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      proc.once('exit', (code, signal) => resolve({ code, signal }));
      // A spawn failure (e.g. node missing) also ends the child.
      proc.once('error', () => resolve({ code: -1, signal: null }));
    });
    const child: Child = { spec, proc, logFile, exited };
    this.children.push(child);
    void exited.then(({ code, signal }) => {
      if (!this.stopping) this.opts.onUnexpectedExit(child, code, signal);
    });
    return child;
  }

  alive(): Child[] {
    return this.children.filter(
      (c) => c.proc.exitCode === null && c.proc.signalCode === null && c.proc.pid !== undefined,
    );
  }

  /** SIGTERM everyone (gateway first, model servers last), SIGKILL after `graceMs`. */
  async stopAll(graceMs = 5_000): Promise<void> {
    this.stopping = true;
    const order = [...this.children].reverse();
    for (const c of order) signal(c, 'SIGTERM');
    const deadline = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    const all = Promise.all(order.map((c) => (c.proc.pid === undefined ? Promise.resolve() : c.exited)));
    if ((await Promise.race([all, deadline])) === 'timeout') {
      for (const c of this.alive()) signal(c, 'SIGKILL');
      await Promise.race([all, new Promise((r) => setTimeout(r, 2_000).unref())]);
    }
    for (const l of this.logs) l.end();
    process.off('exit', this.onExit);
  }

  /** Synchronous last resort (process `exit`): nothing may outlive the demo. */
  private killAllNow(): void {
    for (const c of this.alive()) signal(c, 'SIGKILL');
  }
}

function signal(c: Child, sig: NodeJS.Signals): void {
  if (c.proc.exitCode !== null || c.proc.signalCode !== null || c.proc.pid === undefined) return;
  try {
    process.kill(-c.proc.pid, sig);
  } catch {
    try {
      c.proc.kill(sig);
    } catch {
      // Already gone.
    }
  }
}

/** Polls a URL until it answers 2xx, the child exits, or the timeout passes. */
export async function waitReady(child: Child, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = 'no answer';
  let dead = false;
  void child.exited.then(() => (dead = true));
  while (Date.now() < end) {
    if (dead) throw new Error(`${child.spec.name} exited while starting (log: ${child.logFile})`);
    try {
      const r = await fetch(child.spec.readyUrl, { signal: AbortSignal.timeout(1_000) });
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(
    `${child.spec.name} not ready after ${timeoutMs} ms at ${child.spec.readyUrl} (${last}; log: ${child.logFile})`,
  );
}
