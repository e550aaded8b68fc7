// Starts a real EPP (node bin/hermes-router.js epp) on free loopback ports
// with a config and an endpoints file, for the fault tests, and routes
// requests through it over the raw ext_proc path.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destinationOf, ExtProcClient } from '../../src/extproc/client.js';
import { freePort } from '../helpers/ports.js';
import { getText, metricSum, spawnFn, type SpawnedFn } from '../helpers/spawn.js';

export interface Epp {
  proc: SpawnedFn;
  grpcPort: number;
  adminUrl: string;
  metricsUrl: string;
  client: ExtProcClient;
  dir: string;
  metric(name: string, ...labels: string[]): Promise<number>;
  inFlight(): Promise<number>;
}

export async function startEpp(opts: {
  config?: string;
  endpoints: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
}): Promise<Epp> {
  const dir = mkdtempSync(join(tmpdir(), 'hermes-faults-'));
  writeFileSync(join(dir, 'endpoints.yaml'), opts.endpoints);
  const cfgArgs: string[] = [];
  if (opts.config) {
    writeFileSync(join(dir, 'config.yaml'), opts.config);
    cfgArgs.push('--config-file', join(dir, 'config.yaml'));
  }
  const [g, a, m, h] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const adminUrl = `http://127.0.0.1:${a}`;
  const metricsUrl = `http://127.0.0.1:${m}`;
  const proc = await spawnFn(
    'epp',
    [
      '--grpc-bind',
      '127.0.0.1',
      '--metrics-bind',
      '127.0.0.1',
      '--grpc-port',
      String(g),
      '--admin-port',
      String(a),
      '--metrics-port',
      String(m),
      '--grpc-health-port',
      String(h),
      '--endpoints-file',
      join(dir, 'endpoints.yaml'),
      ...cfgArgs,
      ...(opts.args ?? []),
    ],
    { ready: { http: `${adminUrl}/readyz` }, env: opts.env },
  );
  const client = new ExtProcClient({ target: `127.0.0.1:${g}`, deadlineMs: 30_000 });
  return {
    proc,
    grpcPort: g,
    adminUrl,
    metricsUrl,
    client,
    dir,
    async metric(name, ...labels) {
      return metricSum(await getText(`${metricsUrl}/metrics`), name, ...labels) ?? 0;
    },
    async inFlight() {
      const s = JSON.parse(await getText(`${adminUrl}/state/endpoints`)) as {
        endpoints: Array<{ inFlight: number }>;
      };
      return s.endpoints.reduce((x, e) => x + e.inFlight, 0);
    },
  };
}

export const COMPLETION_HEADERS: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/completions'],
  ['content-type', 'application/json'],
];

/** One request through ext_proc, response phase included; returns the chosen endpoint and how long the pick took. */
export async function routeOnce(
  client: ExtProcClient,
  prompt: string,
): Promise<{ endpoint: string; pickMs: number } | { status: number }> {
  const ex = client.open();
  const t0 = performance.now();
  const v = await ex.sendRequest({
    headers: COMPLETION_HEADERS,
    body: Buffer.from(JSON.stringify({ model: 'm', prompt })),
  });
  const pickMs = performance.now() - t0;
  if (v.kind === 'immediate') {
    ex.end();
    await ex.done;
    return { status: v.status };
  }
  await ex.sendResponseHeaders([
    [':status', '200'],
    ['content-type', 'text/event-stream'],
  ]);
  for await (const _ of ex.streamResponseBody([Buffer.from('data: [DONE]\n\n')])) void _;
  ex.end();
  await ex.done;
  return { endpoint: destinationOf(v)[0]!, pickMs };
}

export async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
