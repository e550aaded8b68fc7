// Fault: SIGTERM while streams are open (a rolling update). Streams already
// open finish normally as long as they end before --drain-timeout; none is
// cut before the deadline; the process then exits 0. A stream longer than
// the deadline is cut at the deadline, not earlier.
import { afterEach, describe, expect, it } from 'vitest';
import type { ExtProcClient } from '../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { stopAllSpawned } from '../helpers/spawn.js';
import { sleep } from '../helpers/wait.js';
import { COMPLETION_HEADERS } from './epp-harness.js';

let models: FakeModel[] = [];

afterEach(async () => {
  await Promise.all(models.map((m) => m.close()));
  models = [];
  await stopAllSpawned();
});

interface StreamResult {
  chunks: number;
  complete: boolean;
  endedAt: number;
  error?: string;
}

/** A request whose response streams `n` chunks `gapMs` apart through the EPP. */
async function slowStream(client: ExtProcClient, n: number, gapMs: number): Promise<StreamResult> {
  let chunks = 0;
  // When the server ends the stream (error or not): ExtProcExchange.done
  // settles at once, while streamResponseBody only returns after the
  // upstream iterable is exhausted.
  let streamEndedAt = 0;
  try {
    const ex = client.open();
    ex.done.then(
      () => (streamEndedAt ||= Date.now()),
      () => (streamEndedAt ||= Date.now()),
    );
    const v = await ex.sendRequest({
      headers: COMPLETION_HEADERS,
      body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'drain me', stream: true })),
    });
    if (v.kind !== 'continue') throw new Error(`not routed: ${v.status}`);
    await ex.sendResponseHeaders([
      [':status', '200'],
      ['content-type', 'text/event-stream'],
    ]);
    async function* upstream() {
      for (let i = 0; i < n; i++) {
        if (streamEndedAt) return;
        yield Buffer.from(`data: {"choices":[{"text":"${i}"}]}\n\n`);
        await sleep(gapMs);
      }
    }
    let bytes = 0;
    for await (const c of ex.streamResponseBody(upstream())) bytes += c.length;
    chunks = bytes > 0 ? n : 0;
    ex.end();
    await ex.done;
    return { chunks, complete: true, endedAt: Date.now() };
  } catch (e) {
    return { chunks, complete: false, endedAt: streamEndedAt || Date.now(), error: (e as Error).message };
  }
}

describe('SIGTERM during load', () => {
  it('open streams finish before the drain deadline; none is cut; exit 0', async () => {
    models = await Promise.all([fakeModel(), fakeModel()]);
    const epp = await startEpp({
      endpoints: endpointsYaml(models.map((m, i) => ({ name: `m${i}`, port: m.port }))),
      args: ['--drain-timeout', '6s', '--log-level', 'info'],
    });
    const streams = Array.from({ length: 12 }, () => slowStream(epp.client, 20, 100)); // ~2 s each
    await sleep(400);
    const sigAt = Date.now();
    epp.proc.child.kill('SIGTERM');
    const results = await Promise.all(streams);
    for (const r of results) expect(r.complete, r.error).toBe(true);
    // They ran to their natural end (~2 s), well inside the 6 s deadline.
    expect(Math.max(...results.map((r) => r.endedAt)) - sigAt).toBeLessThan(5_000);
    const code = await epp.proc.exited;
    expect(code).toBe(0);
    expect(Date.now() - sigAt).toBeLessThan(7_000);
  }, 30_000);

  it('a stream longer than the deadline is cut at the deadline, not before', async () => {
    models = await Promise.all([fakeModel()]);
    const epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'm0', port: models[0]!.port }]),
      args: ['--drain-timeout', '1500ms', '--log-level', 'info'],
    });
    const long = slowStream(epp.client, 60, 100); // ~6 s
    await sleep(300);
    const sigAt = Date.now();
    epp.proc.child.kill('SIGTERM');
    const r = await long;
    expect(r.complete).toBe(false);
    const cutAfter = r.endedAt - sigAt;
    expect(cutAfter).toBeGreaterThanOrEqual(1_400);
    expect(cutAfter).toBeLessThan(4_000);
    await epp.proc.exited;
  }, 30_000);

  // Regression: the client helper used to surface a server-side cut only once
  // the upstream body was exhausted, so gateway-dev held a cut response
  // until the model server finished.
  it('streamResponseBody reports a server-side cut promptly (client helper)', async () => {
    models = await Promise.all([fakeModel()]);
    const epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'm0', port: models[0]!.port }]),
      args: ['--drain-timeout', '500ms', '--log-level', 'warn'],
    });
    const ex = epp.client.open();
    const v = await ex.sendRequest({
      headers: COMPLETION_HEADERS,
      body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'cut me', stream: true })),
    });
    expect(v.kind).toBe('continue');
    await ex.sendResponseHeaders([[':status', '200']]);
    async function* upstream() {
      for (let i = 0; i < 40; i++) {
        yield Buffer.from(`data: ${i}\n\n`);
        await sleep(100); // 4 s of upstream body
      }
    }
    await sleep(100);
    const sigAt = Date.now();
    epp.proc.child.kill('SIGTERM');
    let thrownAt = 0;
    try {
      for await (const _ of ex.streamResponseBody(upstream())) void _;
    } catch {
      thrownAt = Date.now();
    }
    expect(thrownAt).toBeGreaterThan(0);
    // Cut at ~500 ms; reported within a second of it, not after the 4 s upstream.
    expect(thrownAt - sigAt).toBeLessThan(1_500);
  }, 30_000);
});
