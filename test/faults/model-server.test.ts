// Faults of the model servers themselves, through real processes (EPP +
// gateway-dev) and in-process fake model servers:
//  - one server's /metrics hangs, one returns garbage, one errors: requests
//    are still routed and served; hermes_metrics_scrape_errors_total shows
//    each failing endpoint; after recovery the errors stop growing;
//  - one server dies mid-stream: the requests it took fail (cut), every
//    other request is served completely, nothing stays charged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.js';
import { spawnFn, stopAllSpawned, type SpawnedFn } from '../helpers/spawn.js';
import { endpointsYaml, startEpp, type Epp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { eventually } from '../helpers/wait.js';
import { routeOnce } from './epp-harness.js';

let models: FakeModel[];
let epp: Epp;
let gateway: SpawnedFn;
let gatewayUrl = '';

beforeAll(async () => {
  models = await Promise.all([fakeModel(), fakeModel(), fakeModel(), fakeModel()]);
  epp = await startEpp({
    endpoints: endpointsYaml(models.map((m, i) => ({ name: `m${i}`, port: m.port }))),
    args: [
      '--refresh-metrics-interval',
      '50ms',
      '--metrics-staleness-threshold',
      '500ms',
      '--log-level',
      'warn',
    ],
  });
  const gp = await freePort();
  gatewayUrl = `http://127.0.0.1:${gp}`;
  gateway = await spawnFn(
    'gateway-dev',
    [
      '--port',
      String(gp),
      '--host',
      '127.0.0.1',
      '--epp',
      `127.0.0.1:${epp.grpcPort}`,
      '--timeout',
      '5s',
      '--log-level',
      'warn',
    ],
    { ready: { http: `${gatewayUrl}/_gateway/healthz` } },
  );
});

afterAll(async () => {
  await Promise.all(models.map((m) => m.close()));
  await stopAllSpawned();
});

/** One request through gateway-dev; 'ok' only when the SSE body arrived whole. */
async function viaGateway(prompt: string): Promise<'ok' | 'cut' | number> {
  try {
    const r = await fetch(`${gatewayUrl}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt, stream: true }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    if (r.status !== 200) return r.status;
    return text.includes('data: [DONE]') ? 'ok' : 'cut';
  } catch {
    return 'cut';
  }
}

const scrapeErrors = (m: FakeModel) => epp.metric('hermes_metrics_scrape_errors_total', `endpoint="${m.id}"`);

describe('model server faults', () => {
  it('/metrics hung, garbage, erroring: requests still routed and served, scrape errors visible per endpoint', async () => {
    models[0]!.metricsMode = 'hang';
    models[1]!.metricsMode = 'garbage';
    models[2]!.metricsMode = 'error';
    await eventually(
      async () => (await scrapeErrors(models[1]!)) > 0 && (await scrapeErrors(models[2]!)) > 0,
      5_000,
      'scrape errors for the garbage and erroring servers',
      100,
    );
    await eventually(
      async () => (await scrapeErrors(models[0]!)) > 0,
      10_000,
      'scrape errors (timeouts) for the hung server',
      100,
    );
    expect(await scrapeErrors(models[3]!)).toBe(0);

    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => viaGateway(`metrics fault ${i}`)));
    expect(
      results.every((r) => r === 'ok'),
      JSON.stringify(results),
    ).toBe(true);
    const raw = await Promise.all(Array.from({ length: 10 }, (_, i) => routeOnce(epp.client, `raw ${i}`)));
    for (const r of raw) expect('endpoint' in r, JSON.stringify(r)).toBe(true);
    expect(epp.proc.alive() && gateway.alive()).toBe(true);
  });

  it('after recovery the scrape errors stop growing', async () => {
    for (const m of models) m.metricsMode = 'ok';
    await new Promise((r) => setTimeout(r, 1_500)); // a hung scrape times out, then scrapes succeed
    const before = await Promise.all(models.map(scrapeErrors));
    await new Promise((r) => setTimeout(r, 1_000));
    const after = await Promise.all(models.map(scrapeErrors));
    expect(after).toEqual(before);
  });

  it('a server that dies mid-stream: its requests are cut, every other request is served, nothing stays charged', async () => {
    const dying = models[3]!;
    dying.completionMode = 'die-mid-stream';
    const before = models.map((m) => m.completions);
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => viaGateway(`mid-stream ${i}`)));
    const took = models.map((m, i) => m.completions - before[i]!);
    const ok = results.filter((r) => r === 'ok').length;
    const failed = results.length - ok;
    expect(took[3], `requests per server ${JSON.stringify(took)}`).toBeGreaterThan(0);
    // Exactly the requests the dying server took failed; all the others were served.
    expect(failed).toBe(took[3]);
    expect(ok).toBe(took[0]! + took[1]! + took[2]!);
    expect(epp.proc.alive() && gateway.alive()).toBe(true);
    await eventually(
      async () => (await epp.inFlight()) === 0,
      10_000,
      'charges of cut streams to be released',
      100,
    );
    dying.completionMode = 'ok';
    expect(await viaGateway('after')).toBe('ok');
  });
});
