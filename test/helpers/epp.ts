// Starts a real EPP (`node bin/hermes-router.js epp`) on free loopback
// ports, for the integration, fault, fuzz and soak runs: writes the
// endpoints file and config it is given, waits until it is ready, and hands
// back its ports, an ext_proc client, its logs, readers of its admin API and
// /metrics, and stop(). Imported by test/soak/soak.ts, so it must stay free
// of vitest and compile under tsconfig.build.json.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExtProcClient } from '../../src/gateway/extproc-client.js';
import { freePort } from './ports.js';
import { getText, metricSum, spawnFn, type SpawnedFn } from './spawn.js';

export interface EppOptions {
  /** Endpoints YAML (see endpointsYaml), written to <dir>/endpoints.yaml. */
  endpoints?: string;
  /** An endpoints file that exists already (shared by replicas, rewritten by the test). */
  endpointsFile?: string;
  /** EndpointPickerConfig YAML, written to <dir>/config.yaml. */
  config?: string;
  /** More flags, after the port flags: a repeated flag wins (e.g. `--grpc-health-port -1`). */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Name in error messages (default "epp"). */
  name?: string;
  /**
   * When the EPP counts as started: /readyz answering 200 (default), or its
   * admin port accepting connections, for an EPP that cannot get ready
   * (e.g. Redis unreachable).
   */
  ready?: 'readyz' | 'admin-port';
  readyTimeoutMs?: number;
  /** Settings of `client`, the default ext_proc client (plaintext, 30 s deadline). */
  client?: ClientOptions;
}

export interface ClientOptions {
  tls?: boolean;
  deadlineMs?: number;
}

export interface EndpointState {
  id: string;
  inFlight: number;
  labels: Record<string, string>;
  signals: { waitingQueueSize: number | null; kvCacheUsage: number | null; stale: boolean } | null;
}

export interface Epp {
  proc: SpawnedFn;
  grpcPort: number;
  adminPort: number;
  metricsPort: number;
  healthPort: number;
  adminUrl: string;
  metricsUrl: string;
  /** Temp directory holding the files written for this EPP. */
  dir: string;
  endpointsFile?: string;
  /** Bearer token of the admin API (ADMIN_TOKEN or --admin-token), when given one. */
  token?: string;
  /** The default ext_proc client, created on first use. */
  readonly client: ExtProcClient;
  /** Another ext_proc client to this EPP (closed by stop()). */
  connect(opts?: ClientOptions): ExtProcClient;
  /** stdout + stderr so far. */
  logs(): string;
  /** Closes the clients, sends SIGTERM (SIGKILL after `graceMs`); resolves with the exit code. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  /** GET on the admin API, with the bearer token when there is one. */
  adminGet(path: string): Promise<Response>;
  endpointStates(): Promise<EndpointState[]>;
  /** Sum of the in-flight charges over every endpoint. */
  inFlight(): Promise<number>;
  /** The Prometheus text of /metrics. */
  metricsText(): Promise<string>;
  /** Sum of metric `name` over the samples whose labels contain every `labels` substring (0 when none). */
  metric(name: string, ...labels: string[]): Promise<number>;
}

export function endpointsYaml(
  eps: Array<{ name: string; port: number; labels?: Record<string, string> }>,
): string {
  if (eps.length === 0) return 'endpoints: []\n';
  return (
    'endpoints:\n' +
    eps
      .map(
        (e) =>
          `- name: ${e.name}\n  address: 127.0.0.1\n  port: ${e.port}\n` +
          (e.labels ? `  labels: ${JSON.stringify(e.labels)}\n` : ''),
      )
      .join('')
  );
}

/** One PD group: a leader, a prefill and a decode pod, named by their role. */
export function pdGroupEndpoints(ports: readonly [number, number, number], group = 'g1'): string {
  return endpointsYaml(
    (['leader', 'prefill', 'decode'] as const).map((role, i) => ({
      name: role,
      port: ports[i]!,
      labels: { 'openfuyao.com/pdRole': role, 'openfuyao.com/pdGroupID': group },
    })),
  );
}

/** A PD profile: PD groups only, a random group and pods, the PD headers. */
export const PD_CONFIG = `apiVersion: inference.networking.x-k8s.io/v1alpha1
kind: EndpointPickerConfig
plugins:
- type: filter-by-pd-label
- type: picker-random-pd-bucket
- type: pd-header-handler
schedulingProfiles:
- name: default
  plugins:
  - pluginRef: filter-by-pd-label
  - pluginRef: picker-random-pd-bucket
  - pluginRef: pd-header-handler
`;

export function tempDir(prefix = 'hermes-epp-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function flagValue(args: string[], flag: string): string | undefined {
  const i = args.lastIndexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

export async function startEpp(opts: EppOptions = {}): Promise<Epp> {
  const dir = tempDir();
  let endpointsFile = opts.endpointsFile;
  if (opts.endpoints !== undefined) {
    endpointsFile = join(dir, 'endpoints.yaml');
    writeFileSync(endpointsFile, opts.endpoints);
  }
  const fileArgs = endpointsFile ? ['--endpoints-file', endpointsFile] : [];
  if (opts.config !== undefined) {
    writeFileSync(join(dir, 'config.yaml'), opts.config);
    fileArgs.push('--config-file', join(dir, 'config.yaml'));
  }
  const args = opts.args ?? [];
  const [grpcPort, adminPort, metricsPort, healthPort] = await Promise.all([
    freePort(),
    freePort(),
    freePort(),
    freePort(),
  ]);
  const adminUrl = `http://127.0.0.1:${adminPort}`;
  const metricsUrl = `http://127.0.0.1:${metricsPort}`;
  const proc = await spawnFn(
    'epp',
    [
      '--grpc-bind',
      '127.0.0.1',
      '--metrics-bind',
      '127.0.0.1',
      '--grpc-port',
      String(grpcPort),
      '--admin-port',
      String(adminPort),
      '--metrics-port',
      String(metricsPort),
      '--grpc-health-port',
      String(healthPort),
      ...fileArgs,
      ...args,
    ],
    {
      name: opts.name ?? 'epp',
      env: opts.env,
      ready: opts.ready === 'admin-port' ? { tcp: adminPort } : { http: `${adminUrl}/readyz` },
      readyTimeoutMs: opts.readyTimeoutMs,
      stopGraceMs: 8_000,
    },
  );
  const token = opts.env?.ADMIN_TOKEN ?? flagValue(args, '--admin-token');
  const clients: ExtProcClient[] = [];
  let defaultClient: ExtProcClient | undefined;
  const connect = (c: ClientOptions = {}) => {
    const client = new ExtProcClient({
      target: `127.0.0.1:${grpcPort}`,
      tls: c.tls ?? false,
      deadlineMs: c.deadlineMs ?? 30_000,
    });
    clients.push(client);
    return client;
  };
  const adminGet = (path: string) =>
    fetch(`${adminUrl}${path}`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(5_000),
    });
  const epp: Epp = {
    proc,
    grpcPort,
    adminPort,
    metricsPort,
    healthPort,
    adminUrl,
    metricsUrl,
    dir,
    endpointsFile,
    token,
    get client() {
      defaultClient ??= connect(opts.client);
      return defaultClient;
    },
    connect,
    logs: () => proc.output(),
    stop(signal, graceMs) {
      for (const c of clients.splice(0)) c.close();
      return proc.stop(signal, graceMs);
    },
    adminGet,
    async endpointStates() {
      const r = await adminGet('/state/endpoints');
      if (r.status !== 200) throw new Error(`/state/endpoints answered ${r.status}`);
      return ((await r.json()) as { endpoints: EndpointState[] }).endpoints;
    },
    async inFlight() {
      return (await epp.endpointStates()).reduce((s, e) => s + e.inFlight, 0);
    },
    metricsText: () => getText(`${metricsUrl}/metrics`),
    async metric(name, ...labels) {
      return metricSum(await getText(`${metricsUrl}/metrics`), name, ...labels) ?? 0;
    },
  };
  return epp;
}
