// Starts the local stack for end-to-end tests exactly as `hermes-router
// demo` plans it (src/demo/topology.ts), on free loopback ports, each
// process a real `hermes-router <fn>`; plus helpers to read the EPP's
// decisions and the cache-indexer's view.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localizeProfile } from '../../../src/demo/profile.js';
import {
  endpointsFileText,
  planDemo,
  startOrder,
  type DemoPlan,
  type ProcessSpec,
} from '../../../src/demo/topology.js';
import { startEpp } from '../../helpers/epp.js';
import { freePort } from '../../helpers/ports.js';
import { REPO_ROOT, spawnFn, type SpawnedFn } from '../../helpers/spawn.js';

export interface TestStack {
  plan: DemoPlan;
  dir: string;
  gatewayUrl: string;
  adminUrl: string;
  indexerUrl: string;
  endpointsFile: string;
  procs: Map<string, SpawnedFn>;
  models: ProcessSpec[];
  stop(): Promise<void>;
}

export interface StackOptions {
  profile: string;
  pd?: boolean;
  pdPrefill?: number;
  pdDecode?: number;
  mocks?: number;
  redisUrl?: string;
  timeScale?: number;
  mockArgs?: string[];
}

export function examplePath(name: string): string {
  return join(REPO_ROOT, 'examples', 'profiles', name);
}

function ports() {
  const used = new Set<number>();
  return {
    async next() {
      for (;;) {
        const p = await freePort();
        if (!used.has(p)) {
          used.add(p);
          return p;
        }
      }
    },
  };
}

export async function startTestStack(o: StackOptions): Promise<TestStack> {
  const dir = mkdtempSync(join(tmpdir(), 'hermes-stack-'));
  const files = { endpointsFile: join(dir, 'endpoints.yaml'), profileFile: join(dir, 'profile.yaml') };
  const alloc = ports();
  const plan = await planDemo(
    {
      gatewayPort: await alloc.next(),
      model: 'mock-model',
      mocks: o.mocks ?? 3,
      pd: o.pd ?? false,
      pdGroups: 1,
      pdPrefill: o.pdPrefill ?? 1,
      pdDecode: o.pdDecode ?? 1,
      ...(o.redisUrl ? { redisUrl: o.redisUrl } : {}),
      timeScale: o.timeScale ?? 20,
      mockArgs: o.mockArgs ?? [],
      logLevel: 'info',
    },
    alloc,
    files,
  );
  writeFileSync(files.endpointsFile, endpointsFileText(plan.endpoints));
  writeFileSync(
    files.profileFile,
    localizeProfile(readFileSync(o.profile, 'utf8'), {
      host: '127.0.0.1',
      port: plan.indexerPort,
      timeoutNs: 200_000_000,
    }),
  );
  const procs = new Map<string, SpawnedFn>();
  const stop = async () => {
    await Promise.all([...procs.values()].map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const wave of startOrder(plan.processes)) {
      const started = await Promise.allSettled(
        wave.map((s) =>
          spawnFn(s.fn, s.args, { name: s.name, ready: { http: s.readyUrl }, readyTimeoutMs: 30_000 }),
        ),
      );
      // Keep every process that started, so stop() reaches it, before failing on one that did not.
      started.forEach((r, i) => r.status === 'fulfilled' && procs.set(wave[i]!.name, r.value));
      for (const r of started) if (r.status === 'rejected') throw r.reason;
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const gw = plan.processes.find((p) => p.role === 'gateway')!;
  return {
    plan,
    dir,
    gatewayUrl: `http://127.0.0.1:${gw.port}`,
    adminUrl: `http://127.0.0.1:${plan.eppPorts.admin}`,
    indexerUrl: `http://127.0.0.1:${plan.indexerPort}`,
    endpointsFile: files.endpointsFile,
    procs,
    models: plan.processes.filter((p) => p.role === 'model-server'),
    stop,
  };
}

export interface SecondRouteOptions {
  /** Names of the two processes in error messages. */
  eppName: string;
  gatewayName: string;
  configFile: string;
  eppArgs?: string[];
  gatewayArgs?: string[];
}

/**
 * Another EPP and its own gateway-dev over the stack's model servers (a
 * second replica, or another profile). Stopped by stopAllSpawned().
 */
export async function startSecondRoute(
  stack: TestStack,
  o: SecondRouteOptions,
): Promise<{ adminUrl: string; gatewayUrl: string }> {
  const epp = await startEpp({
    endpointsFile: stack.endpointsFile,
    args: [
      '--config-file',
      o.configFile,
      ...(o.eppArgs ?? []),
      '--grpc-health-port',
      '-1',
      '--metrics-port',
      '-1',
      '--admin-bind',
      '127.0.0.1',
    ],
    name: o.eppName,
    readyTimeoutMs: 30_000,
  });
  const gwPort = await freePort();
  const gatewayUrl = `http://127.0.0.1:${gwPort}`;
  await spawnFn(
    'gateway-dev',
    ['--port', String(gwPort), '--epp', `127.0.0.1:${epp.grpcPort}`, ...(o.gatewayArgs ?? [])],
    {
      name: o.gatewayName,
      ready: { http: `${gatewayUrl}/_gateway/healthz` },
      readyTimeoutMs: 15_000,
    },
  );
  return { adminUrl: epp.adminUrl, gatewayUrl };
}

export interface DecisionView {
  requestId: string;
  endpoint: string;
  fallbacks?: string[];
  prefill?: string;
  decode?: string;
  profile: string;
}

export async function decisionFor(adminUrl: string, requestId: string): Promise<DecisionView> {
  for (let i = 0; i < 20; i++) {
    const r = (await (await fetch(`${adminUrl}/state/decisions?limit=1000`)).json()) as {
      decisions: DecisionView[];
    };
    const d = r.decisions.find((x) => x.requestId === requestId);
    if (d) return d;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no EPP decision recorded for request ${requestId}`);
}

export interface MatchResult {
  endpoint: string;
  hitRate: number;
}

export async function matchSort(indexerUrl: string, body: Record<string, unknown>): Promise<MatchResult[]> {
  const r = await fetch(`${indexerUrl}/match_sort`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!r.ok) throw new Error(`/match_sort: HTTP ${r.status} ${await r.text()}`);
  return ((await r.json()) as { results: MatchResult[] }).results;
}
