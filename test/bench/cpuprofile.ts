// `npm run bench -- cpuprofile FILE.cpuprofile [--top 25] [--since-ms 0] [--under NAME,NAME]`
//   --under: only samples with one of these function names on their stack (e.g.
//   `pick,scheduleOn` for a Director decision, its await continuations included),
//   so the work a benchmark does outside its clock is left out.
//
// Summarises a V8 CPU profile (node --cpu-prof; the extproc benchmark
// writes them with --cpu-prof DIR): self time per frame (function + file:line),
// the share of all sampled non-idle time, and the same grouped by package /
// source file, so a before/after "flame summary" is a few lines of text.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length);
  const d = url.indexOf('/dist/');
  if (d >= 0) return url.slice(d + 1);
  return url.replace(/^file:\/\//, '');
}

function groupOf(url: string): string {
  if (url === '') return '(native/vm)';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  return shortUrl(url);
}

/** Node ids whose stack holds a frame named in `names` (the frame itself included). */
function nodesUnder(profile: CpuProfile, names: ReadonlySet<string>): Set<number> {
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const out = new Set<number>();
  for (const n of profile.nodes) {
    for (let id: number | undefined = n.id; id !== undefined; id = parent.get(id)) {
      if (names.has(byId.get(id)!.callFrame.functionName)) {
        out.add(n.id);
        break;
      }
    }
  }
  return out;
}

export function summarise(
  profile: CpuProfile,
  top: number,
  sinceMs = 0,
  under?: ReadonlySet<string>,
): string {
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) byId.set(n.id, n);
  const kept = under ? nodesUnder(profile, under) : undefined;
  const self = new Map<number, number>();
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (t / 1000 < sinceMs) continue;
    const id = profile.samples[i]!;
    if (kept && !kept.has(id)) continue;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const frames = new Map<string, number>();
  const groups = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const key = `${f.functionName || '(anonymous)'} ${f.url ? `${shortUrl(f.url)}:${f.lineNumber + 1}` : ''}`;
    frames.set(key, (frames.get(key) ?? 0) + us);
    const g = f.url ? groupOf(f.url) : f.functionName.startsWith('(') ? f.functionName : '(native/vm)';
    groups.set(g, (groups.get(g) ?? 0) + us);
  }
  const pct = (us: number) => ((100 * us) / busy).toFixed(1).padStart(5);
  const lines = [
    `busy ${(busy / 1000).toFixed(0)} ms, idle ${(idle / 1000).toFixed(0)} ms`,
    'self time by frame:',
  ];
  for (const [k, us] of [...frames].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${pct(us)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  lines.push('self time by package / file:');
  for (const [k, us] of [...groups].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${pct(us)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${k}`);
  return lines.join('\n') + '\n';
}

export async function run(args: string[]): Promise<void> {
  const file = args.find((a) => !a.startsWith('--'));
  if (!file)
    throw new Error(
      'usage: npm run bench -- cpuprofile FILE.cpuprofile [--top N] [--since-ms MS] [--under NAME,NAME]',
    );
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const under = arg('--under');
  process.stdout.write(
    summarise(
      profile,
      Number(arg('--top') ?? 25),
      Number(arg('--since-ms') ?? 0),
      under ? new Set(under.split(',')) : undefined,
    ),
  );
}
