// Runs the real helm for the chart tests. helm comes from HELM_BIN (set by
// .ci/tools.sh, which builds it with Go) or PATH; without it the tests fail
// with a message saying how to get it, they do not skip.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import yaml from 'js-yaml';

export const ROOT = resolve(import.meta.dirname, '../..');

export function helmBin(): string {
  const fromEnv = process.env.HELM_BIN;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`HELM_BIN=${fromEnv} does not exist; run: source .ci/tools.sh`);
    return fromEnv;
  }
  const probe = spawnSync('helm', ['version', '--short'], { encoding: 'utf8' });
  if (probe.status === 0) return 'helm';
  throw new Error(
    'helm not found: set HELM_BIN or put helm on PATH. `source .ci/tools.sh` builds the pinned version with Go ' +
      '(go install helm.sh/helm/v3/cmd/helm@<version>) and exports HELM_BIN.',
  );
}

export interface HelmResult {
  ok: boolean;
  stdout: string;
  stderr: string;
}

export function helm(args: string[], cwd = ROOT): HelmResult {
  const r = spawnSync(helmBin(), args, {
    cwd,
    encoding: 'utf8',
    timeout: 60_000,
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(tmpdir(), 'hermes-helm-cache'),
      HELM_CONFIG_HOME: join(tmpdir(), 'hermes-helm-config'),
    },
  });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? (r.error ? String(r.error) : '') };
}

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  data?: Record<string, string>;
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  subjects?: { kind: string; name: string; namespace?: string }[];
  roleRef?: { kind: string; name: string };
};

/** helm template; throws with helm's stderr when rendering fails. */
export function render(
  chart: string,
  opts: { values?: string[]; set?: string[]; namespace?: string; release?: string } = {},
): K8sObject[] {
  const args = [
    'template',
    opts.release ?? 'hermes-router',
    chart,
    '--namespace',
    opts.namespace ?? 'ai-inference',
  ];
  for (const f of opts.values ?? []) args.push('-f', f);
  for (const s of opts.set ?? []) args.push('--set', s);
  const r = helm(args);
  if (!r.ok) throw new Error(`helm ${args.join(' ')} failed:\n${r.stderr}`);
  return (yaml.loadAll(r.stdout) as (K8sObject | null)[]).filter(
    (d): d is K8sObject => d !== null && typeof d === 'object',
  );
}

/** helm template expected to fail; returns helm's error text. */
export function renderError(chart: string, opts: { values?: string[]; set?: string[] } = {}): string {
  const args = ['template', 'hermes-router', chart, '--namespace', 'ai-inference'];
  for (const f of opts.values ?? []) args.push('-f', f);
  for (const s of opts.set ?? []) args.push('--set', s);
  const r = helm(args);
  if (r.ok) throw new Error(`helm ${args.join(' ')} succeeded but was expected to fail`);
  return r.stderr;
}

export function find(objs: K8sObject[], kind: string, name?: string): K8sObject {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o)
    throw new Error(
      `no ${kind}${name ? ` ${name}` : ''} rendered; got ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`,
    );
  return o;
}

export function kinds(objs: K8sObject[]): string[] {
  return objs.map((o) => `${o.kind}/${o.metadata.name}`).sort();
}

/** node bin/hermes-router.js check-config FILE (needs `npm run build`). */
export function checkConfig(file: string): HelmResult {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/hermes-router.js'), 'check-config', file], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { ok: r.status === 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
