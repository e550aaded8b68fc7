// `hermes-router demo`: the whole stack on loopback in one command. Plans the
// processes (src/demo/topology.ts), writes the endpoints file and the
// localized profile to a temp dir, starts the real functions in order,
// prints what runs and a curl to try, shows progress, and on Ctrl-C (or
// SIGTERM, or a child's crash) prints a summary and stops every child.
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPdProfile, localizeProfile, usesCacheIndexer } from './profile.js';
import { progressLine, summaryText, takeSnapshot } from './summary.js';
import { Supervisor, waitReady, type Child } from './supervisor.js';
import { endpointsFileText, planDemo, startOrder, type DemoOptions } from './topology.js';

export interface DemoFlags extends Omit<DemoOptions, 'pd'> {
  pd: boolean;
  profile?: string;
  progressMs: number;
  keepLogs: boolean;
  readyTimeoutMs: number;
}

/** The repo (or installed package) root: bin/, examples/ and dist/ live there. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'bin', 'hermes-router.js')) && existsSync(join(dir, 'examples'))) return dir;
    dir = dirname(dir);
  }
  throw new Error('cannot find the hermes-router package root (bin/hermes-router.js)');
}

/** OS-chosen free loopback ports, never the same one twice in a run. */
function portAllocator(reserved: number[]) {
  const used = new Set(reserved);
  const one = () =>
    new Promise<number>((res, rej) => {
      const s = createServer();
      s.once('error', rej);
      s.listen(0, '127.0.0.1', () => {
        const a = s.address();
        const p = typeof a === 'object' && a ? a.port : 0;
        s.close(() => res(p));
      });
    });
  return {
    async next(): Promise<number> {
      for (;;) {
        const p = await one();
        if (!used.has(p)) {
          used.add(p);
          return p;
        }
      }
    },
  };
}

const out = (s: string) => process.stdout.write(s);

/** Resolves to an error message when the port cannot be bound on loopback. */
function portProblem(port: number): Promise<string | undefined> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', (e) => res((e as Error).message));
    s.listen(port, '127.0.0.1', () => s.close(() => res(undefined)));
  });
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function runDemo(flags: DemoFlags): Promise<number> {
  const root = packageRoot();
  const profileSource = flags.profile
    ? resolve(flags.profile)
    : join(root, 'examples', 'profiles', flags.pd ? 'epp-pd-bucket.yaml' : 'epp-kv-cache-aware.yaml');
  let profileText: string;
  try {
    profileText = readFileSync(profileSource, 'utf8');
  } catch (e) {
    process.stderr.write(`demo: cannot read the profile ${profileSource}: ${(e as Error).message}\n`);
    return 2;
  }
  const pd = flags.pd || isPdProfile(profileText);
  const busy = await portProblem(flags.gatewayPort);
  if (busy) {
    process.stderr.write(
      `demo: the gateway port ${flags.gatewayPort} is not free (${busy}); choose another with --port\n`,
    );
    return 1;
  }

  const dir = mkdtempSync(join(tmpdir(), 'hermes-demo-'));
  const files = { endpointsFile: join(dir, 'endpoints.yaml'), profileFile: join(dir, 'profile.yaml') };
  const plan = await planDemo({ ...flags, pd }, portAllocator([flags.gatewayPort]), files);
  writeFileSync(files.endpointsFile, endpointsFileText(plan.endpoints));
  writeFileSync(
    files.profileFile,
    localizeProfile(profileText, { host: '127.0.0.1', port: plan.indexerPort, timeoutNs: 100_000_000 }),
  );

  const names = new Map(plan.processes.filter((p) => p.endpoint).map((p) => [p.endpoint!, p.name]));
  const gatewayUrl = `http://127.0.0.1:${flags.gatewayPort}`;
  const adminUrl = `http://127.0.0.1:${plan.eppPorts.admin}`;

  let finish!: (reason: { code: number; why: string }) => void;
  const finished = new Promise<{ code: number; why: string }>((r) => (finish = r));
  let crashed: Child | undefined;
  const sup = new Supervisor({
    cliPath: join(root, 'bin', 'hermes-router.js'),
    logDir: dir,
    onUnexpectedExit: (child, code, signal) => {
      crashed ??= child;
      finish({ code: 1, why: `${child.spec.name} exited unexpectedly (${signal ?? `code ${code}`})` });
    },
  });
  const onSignal = (sig: NodeJS.Signals) => finish({ code: 0, why: sig });
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  // A closed terminal (SIGHUP) must not leave the children, which live in their own sessions, behind.
  const sighup = () => onSignal('SIGHUP');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);
  process.on('SIGHUP', sighup);

  out(
    `Hermes-router demo (${pd ? 'PD-disaggregated' : 'aggregated'}; profile ${profileSource})\nstarting ...\n`,
  );
  let started = false;
  const startup = (async () => {
    for (const wave of startOrder(plan.processes)) {
      const children = wave.map((spec) => sup.start(spec));
      await Promise.all(children.map((c) => waitReady(c, flags.readyTimeoutMs)));
      for (const c of children) out(`  ready  ${c.spec.name}\n`);
    }
    started = true;
  })();
  const first = await Promise.race([startup.then(() => undefined), finished]).catch((e: Error) => ({
    code: 1,
    why: e.message,
  }));

  let progress: NodeJS.Timeout | undefined;
  // Fallback for the summary if the gateway is already gone when we stop.
  let lastSnapshot: Awaited<ReturnType<typeof takeSnapshot>> = {};
  let reason: { code: number; why: string };
  if (first) {
    reason = first;
  } else {
    out(`\nRunning (${dir}):\n`);
    const w = Math.max(...plan.processes.map((p) => p.name.length));
    for (const c of sup.list()) {
      out(
        `  ${c.spec.name.padEnd(w)}  pid ${String(c.proc.pid).padEnd(7)} 127.0.0.1:${String(c.spec.port).padEnd(6)} ${c.spec.fn.padEnd(13)} ${c.spec.note ?? ''}\n`,
      );
    }
    if (!usesCacheIndexer(profileText))
      out('  (this profile does not ask the cache-indexer; it runs anyway)\n');
    const model = flags.model;
    out(
      `\nTry:\n  curl -s ${gatewayUrl}/v1/chat/completions -H 'content-type: application/json' \\\n` +
        `    -d '{"model":"${model}","messages":[{"role":"user","content":"Hello!"}]}'\n` +
        `  curl -sN ${gatewayUrl}/v1/completions -H 'content-type: application/json' \\\n` +
        `    -d '{"model":"${model}","prompt":"Once upon a time","max_tokens":8,"stream":true}'\n` +
        `Routing decisions: curl -s ${adminUrl}/state/decisions\nLogs: ${dir}/<name>.log\nCtrl-C stops everything.\n\n`,
    );
    let lastLine = '';
    progress = setInterval(() => {
      void takeSnapshot(gatewayUrl, adminUrl).then((s) => {
        if (s.gateway) lastSnapshot = s;
        const line = progressLine(s, names);
        if (line && line !== lastLine) out(`  ${new Date().toISOString().slice(11, 19)}  ${line}\n`);
        lastLine = line || lastLine;
      });
    }, flags.progressMs);
    reason = await finished;
  }

  if (progress) clearInterval(progress);
  out(`\nstopping (${reason.why}) ...\n`);
  let snapshot = started ? await takeSnapshot(gatewayUrl, adminUrl) : {};
  if (!snapshot.gateway && lastSnapshot.gateway)
    snapshot = { ...lastSnapshot, decisions: snapshot.decisions ?? lastSnapshot.decisions };
  await sup.stopAll();
  process.off('SIGINT', sigint);
  process.off('SIGTERM', sigterm);
  process.off('SIGHUP', sighup);
  if (started) out(summaryText(snapshot, names));
  if (crashed || reason.code !== 0) {
    if (crashed) out(`\n${crashed.spec.name} log (last lines):\n${tail(crashed.logFile, 20)}\n`);
    out(`\nlogs kept in ${dir}\n`);
    return reason.code || 1;
  }
  if (flags.keepLogs) out(`logs kept in ${dir}\n`);
  else rmSync(dir, { recursive: true, force: true });
  out('all processes stopped\n');
  return 0;
}
