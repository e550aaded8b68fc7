// Spawns real `hermes-router <function>` processes for integration tests and
// makes sure each one is gone afterwards.
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const cliPath = join(repoRoot, 'bin', 'hermes-router.js');

export interface Proc {
  name: string;
  child: ChildProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Resolves once `text` (or a match of the regexp) appears in the output. */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<Proc>();

export function startFn(
  fn: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; name?: string; detached?: boolean } = {},
): Proc {
  const child = spawn(process.execPath, [cliPath, fn, ...args], {
    cwd: repoRoot,
    env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'info', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.detached ?? false,
  });
  let out = '';
  const waiters: Array<() => void> = [];
  const onData = (d: Buffer) => {
    out += d.toString();
    if (out.length > 4_000_000) out = out.slice(-2_000_000);
    for (const w of waiters.splice(0)) w();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const proc: Proc = {
    name: opts.name ?? fn,
    child,
    output: () => out,
    waitForOutput(text, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const end = Date.now() + timeoutMs;
        const check = () => {
          const m = typeof text === 'string' ? (out.includes(text) ? text : null) : out.match(text)?.[0];
          if (m) return resolve(m);
          if (child.exitCode !== null || child.signalCode !== null) {
            return reject(
              new Error(
                `${proc.name} exited (${child.exitCode ?? child.signalCode}) before printing ${text}:\n${out.slice(-3000)}`,
              ),
            );
          }
          if (Date.now() > end)
            return reject(new Error(`${proc.name}: no ${text} within ${timeoutMs} ms:\n${out.slice(-3000)}`));
          waiters.push(check);
          setTimeout(check, 200);
        };
        check();
      });
    },
    exited,
    async stop(signal = 'SIGTERM') {
      live.delete(proc);
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
  live.add(proc);
  return proc;
}

/** Stops every process a test file started that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

/** Polls `url` until it answers 2xx. */
export async function waitForHttp(url: string, timeoutMs = 15_000, proc?: Proc): Promise<void> {
  const end = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < end) {
    if (proc && proc.child.exitCode !== null)
      throw new Error(`${proc.name} exited:\n${proc.output().slice(-3000)}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${url} not ready within ${timeoutMs} ms (${last})${proc ? `\n${proc.output().slice(-3000)}` : ''}`,
  );
}

/** Whether a process id is still alive. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
