// A second EPP process: TLS on ext_proc (self-signed), a PD profile whose
// header handler names the prefill and decode pods, the 429 of a scheduler
// that filters everyone out, gRPC health, the admin token, and a graceful
// SIGTERM that lets an open stream finish.
import { writeFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { service as healthService } from 'grpc-health-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { destinationOf, headerOf, type ExtProcClient } from '../../../src/gateway/extproc-client.js';
import { endpointsYaml, PD_CONFIG, pdGroupEndpoints, startEpp, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { eventually } from '../../helpers/wait.js';

let servers: FakeModel[];
let epp: Epp;
let client: ExtProcClient;
let endpointsFile: string;
const TOKEN = 's3cret';

const pdEndpoints = () => pdGroupEndpoints([servers[0]!.port, servers[1]!.port, servers[2]!.port]);

const body = Buffer.from(JSON.stringify({ model: 'm', prompt: 'a prompt for the PD group' }));
const headers: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/completions'],
  ['x-openfuyao-decode-pod-address-port', '6.6.6.6:1'],
];

function healthCheck(port: number, name: string): Promise<string> {
  const Ctor = grpc.makeGenericClientConstructor(
    healthService as unknown as grpc.ServiceDefinition,
    'Health',
  );
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    c.makeUnaryRequest(
      '/grpc.health.v1.Health/Check',
      (m: { service: string }) => (healthService.Check!.requestSerialize as (x: unknown) => Buffer)(m),
      (b: Buffer) => (healthService.Check!.responseDeserialize as (x: Buffer) => { status: string })(b),
      { service: name },
      { deadline: Date.now() + 3_000 },
      (err: grpc.ServiceError | null, res?: { status: string }) => {
        c.close();
        if (err) reject(err);
        else resolve(res!.status);
      },
    );
  });
}

beforeAll(async () => {
  servers = [await fakeModel(), await fakeModel(), await fakeModel()];
  epp = await startEpp({
    endpoints: pdEndpoints(),
    config: PD_CONFIG,
    args: ['--secure-serving', '--drain-timeout', '5s', '--log-level', 'warn'],
    env: { ADMIN_TOKEN: TOKEN, REFRESH_METRICS_INTERVAL: '25ms' },
    client: { tls: true, deadlineMs: 10_000 },
  });
  endpointsFile = epp.endpointsFile!;
  client = epp.client;
  await client.waitForReady();
});

afterAll(async () => {
  await epp?.stop();
  await Promise.all((servers ?? []).map((s) => s.close()));
});

describe('PD profile over TLS', () => {
  test('destination is the group leader; prefill/decode pods in the handler headers, client values replaced', async () => {
    const ex = client.open();
    const v = await ex.sendRequest({ headers, body });
    if (v.kind !== 'continue') throw new Error(`unexpected ${v.status} ${v.body.toString()}`);
    expect(destinationOf(v)).toEqual([servers[0]!.id]);
    expect(headerOf(v.headers, 'x-openfuyao-prefill-pod-address-port')).toBe(servers[1]!.id);
    expect(headerOf(v.headers, 'x-openfuyao-decode-pod-address-port')).toBe(servers[2]!.id);
    expect(v.headers.filter(([k]) => k === 'x-openfuyao-decode-pod-address-port')).toHaveLength(1);
    expect(v.body.equals(body)).toBe(true);
    // In-flight charged on leader, prefill and decode until the exchange ends.
    expect((await epp.endpointStates()).map((e) => e.inFlight)).toEqual([1, 1, 1]);
    await ex.sendResponseHeaders([[':status', '200']], true);
    ex.end();
    await ex.done;
    await eventually(
      async () => (await epp.endpointStates()).every((e) => e.inFlight === 0),
      3_000,
      'released',
    );
  });

  test('a profile that filters every endpoint out -> 429 (GIE: scheduler failure)', async () => {
    writeFileSync(
      endpointsFile,
      endpointsYaml(servers.map((s, i) => ({ name: `plain-${i}`, port: s.port }))),
    );
    await eventually(
      async () => {
        const r = await fetch(`${epp.adminUrl}/state/endpoints`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        const j = (await r.json()) as { endpoints: Array<{ labels: Record<string, string> }> };
        return j.endpoints.every((e) => Object.keys(e.labels).length === 0);
      },
      5_000,
      'unlabelled endpoints',
    );
    const ex = client.open();
    const v = await ex.sendRequest({ headers, body });
    expect(v.kind === 'immediate' && v.status).toBe(429);
    if (v.kind === 'immediate') expect(JSON.parse(v.body.toString()).error.type).toBe('rate_limit_error');
    writeFileSync(endpointsFile, pdEndpoints());
  });
});

describe('admin, health, shutdown', () => {
  test('/state/* needs the bearer token; /healthz does not', async () => {
    expect((await fetch(`${epp.adminUrl}/state/decisions`)).status).toBe(401);
    const ok = await fetch(`${epp.adminUrl}/state/decisions?limit=5`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(ok.status).toBe(200);
    const j = (await ok.json()) as { decisions: Array<{ endpoint: string }> };
    expect(j.decisions.length).toBeGreaterThan(0);
    expect((await fetch(`${epp.adminUrl}/healthz`)).status).toBe(200);
  });

  test('grpc.health.v1 reports SERVING for the GIE probe names', async () => {
    expect(await healthCheck(epp.healthPort, '')).toBe('SERVING');
    expect(await healthCheck(epp.healthPort, 'inference-extension')).toBe('SERVING');
    expect(await healthCheck(epp.healthPort, 'envoy.service.ext_proc.v3.ExternalProcessor')).toBe('SERVING');
  });

  test('SIGTERM: an open stream finishes, then the process exits 0', async () => {
    await eventually(async () => (await epp.endpointStates()).length === 3, 3_000);
    await eventually(
      async () => {
        const ex = client.open();
        const v = await ex.sendRequest({ headers, body });
        ex.cancel();
        return v.kind === 'continue';
      },
      5_000,
      'PD endpoints back',
    );
    const ex = client.open();
    const v = await ex.sendRequest({ headers, body });
    expect(v.kind).toBe('continue');
    await ex.sendResponseHeaders([
      [':status', '200'],
      ['content-type', 'text/event-stream'],
    ]);
    const exited = epp.proc.exited;
    epp.proc.child.kill('SIGTERM');
    // Readiness drops while draining.
    await eventually(async () => (await fetch(`${epp.adminUrl}/readyz`)).status === 503, 3_000, 'not ready');
    async function* upstream() {
      yield Buffer.from('data: {"usage":{"prompt_tokens":1,"completion_tokens":1}}\n\n');
      await new Promise((r) => setTimeout(r, 200));
      yield Buffer.from('data: [DONE]\n\n');
    }
    const got: string[] = [];
    for await (const c of ex.streamResponseBody(upstream())) got.push(c.toString());
    expect(got.join('')).toContain('[DONE]');
    ex.end();
    await ex.done;
    expect(await exited).toBe(0);
  });
});
