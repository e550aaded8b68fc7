// Issue 17, defect 2: client strings must not grow what the EPP keeps.
// Before the fix, every `model` string became a Prometheus label value
// (~146 series per name: 20,000 names made every scrape fail), and the
// client's x-request-id was kept whole in logs and the decisions ring.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExtProcClient } from '../../src/gateway/extproc-client.js';
import { EppMetrics } from '../../src/observability/metrics.js';
import { OTHER_MODEL } from '../../src/observability/model-labels.js';
import { boundedRequestId, MAX_REQUEST_ID_CHARS } from '../../src/request/request-id.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { endpointsYaml, startEpp, type Epp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { stopAllSpawned } from '../helpers/spawn.js';

const RUN = { numRuns: 300, interruptAfterTimeLimit: 4_000, markInterruptAsFailure: false } as const;

describe('model labels (in process)', () => {
  it('20,000 distinct client model names keep /metrics small; served names get their own label', async () => {
    const metrics = new EppMetrics({ poolName: 'p', store: new MemoryStateStore(), stalenessMs: 1000 });
    const o = metrics.observer();
    const names = fc.sample(fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }), 20_000);
    for (let i = 0; i < 20_000; i++) {
      const m = `${names[i]}#${i}`;
      o.requestReceived!(m, 100);
      o.requestError!(m, 'BadRequest');
      o.requestEnded!(m);
      o.responseComplete!(m, 404, 0.01, 10, undefined);
    }
    // The pool serves "llama": after its first 2xx it is a label of its own.
    o.requestReceived!('llama', 100);
    o.responseComplete!('llama', 200, 0.02, 10, { promptTokens: 3, completionTokens: 2 });
    o.requestEnded!('llama');
    o.requestReceived!('llama', 100);
    o.requestEnded!('llama');
    const text = await metrics.registry.metrics();
    expect(text.length).toBeLessThan(120 * 1024);
    expect(text).toContain(
      `inference_objective_request_total{model_name="${OTHER_MODEL}",target_model_name="${OTHER_MODEL}",priority="0"} 20001`,
    );
    expect(text).toContain(
      'inference_objective_request_total{model_name="llama",target_model_name="llama",priority="0"} 1',
    );
    // Every running-gauge increment was undone under the label it used.
    for (const line of text.split('\n').filter((l) => l.startsWith('inference_objective_running_requests{')))
      expect(line).toMatch(/ 0$/);
    expect(metrics.modelLabels.size).toBe(1);
  });

  it('at most maxModelLabels names are ever labels, even when a server answers 2xx to any name', async () => {
    const metrics = new EppMetrics({
      poolName: 'p',
      store: new MemoryStateStore(),
      stalenessMs: 1000,
      maxModelLabels: 10,
    });
    const o = metrics.observer();
    for (let i = 0; i < 5_000; i++) {
      o.requestReceived!(`m${i}`, 1);
      o.responseComplete!(`m${i}`, 200, 0.01, 1, undefined);
      o.requestEnded!(`m${i}`);
    }
    const text = await metrics.registry.metrics();
    const labels = new Set([...text.matchAll(/model_name="([^"]*)"/g)].map((m) => m[1]));
    expect(labels.size).toBeLessThanOrEqual(11);
    expect(labels.has(OTHER_MODEL)).toBe(true);
  });
});

describe('configured model labels (--model-labels)', () => {
  it('only the listed names are labels: a 2xx for any other name stays `other`', async () => {
    const metrics = new EppMetrics({
      poolName: 'p',
      store: new MemoryStateStore(),
      stalenessMs: 1000,
      knownModels: ['llama', 'qwen'],
      learnModelLabels: false,
    });
    const o = metrics.observer();
    for (const m of ['llama', 'served-anything', 'qwen']) {
      o.requestReceived!(m, 1);
      o.responseComplete!(m, 200, 0.01, 1, undefined);
      o.requestEnded!(m);
    }
    const text = await metrics.registry.metrics();
    const labels = new Set([...text.matchAll(/[{,]model_name="([^"]*)"/g)].map((m) => m[1]));
    expect([...labels].sort()).toEqual(['llama', OTHER_MODEL, 'qwen']);
    expect(metrics.modelLabels.size).toBe(2);
  });

  it('the flag and its env variable parse to a trimmed list; a bound out of range names the flag', async () => {
    const { parseArgs } = await import('../../src/config/cli-options.js');
    const { eppOptions } = await import('../../src/epp/options.js');
    const o = parseArgs('epp', '', eppOptions, ['--model-labels', ' llama, qwen ,,']);
    expect(o.modelLabels).toEqual(['llama', 'qwen']);
    expect(o.maxModelLabels).toBe(100);
    expect(() => parseArgs('epp', '', eppOptions, ['--max-model-labels', '0'])).toThrow(
      /--max-model-labels \(MAX_MODEL_LABELS\): expected an integer in 1..10000/,
    );
  });
});

describe('boundedRequestId', () => {
  it('keeps short ids, bounds long ones, and keeps distinct long ids distinct', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 400 }), fc.string({ maxLength: 4 }), (id, tail) => {
        const b = boundedRequestId(id);
        if (id.length <= MAX_REQUEST_ID_CHARS) expect(b).toBe(id);
        else expect(b.length).toBeLessThanOrEqual(MAX_REQUEST_ID_CHARS + 60);
        if (id.length > MAX_REQUEST_ID_CHARS && tail !== '') expect(boundedRequestId(id + tail)).not.toBe(b);
      }),
      RUN,
    );
  });
});

describe('through a spawned EPP', () => {
  let model: FakeModel;
  let epp: Epp;
  let client: ExtProcClient;
  beforeAll(async () => {
    model = await fakeModel();
    epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'm0', port: model.port }]),
      args: ['--log-level', 'debug'],
    });
    client = epp.client;
  });
  afterAll(async () => {
    await model?.close();
    await stopAllSpawned();
  });

  async function exchange(modelName: string, requestId?: string, status = '404'): Promise<void> {
    const ex = client.open();
    const headers: Array<[string, string]> = [
      [':method', 'POST'],
      [':path', '/v1/completions'],
    ];
    if (requestId) headers.push(['x-request-id', requestId]);
    const v = await ex.sendRequest({
      headers,
      body: Buffer.from(JSON.stringify({ model: modelName, prompt: 'hi' })),
    });
    if (v.kind !== 'immediate') {
      await ex.sendResponseHeaders([[':status', status]]);
      for await (const _ of ex.streamResponseBody([Buffer.from('{}')])) void _;
    }
    ex.end();
    await ex.done;
  }

  it('1,000 invented model names through ext_proc add no series; 50 ids of 1 MiB stay small in the ring and logs', async () => {
    const before = (await epp.metricsText()).length;
    for (let i = 0; i < 1_000; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, (_, j) => exchange(`invented-${i + j}-${'x'.repeat(50)}`)),
      );
    }
    const after = await epp.metricsText();
    expect(after).not.toContain('invented-');
    // The `other` series appear once; nothing grows per name.
    expect(after.length - before).toBeLessThan(60 * 1024);

    const huge = (i: number) => `${i}-${'r'.repeat(1024 * 1024)}`;
    for (let i = 0; i < 50; i += 10) {
      await Promise.all(Array.from({ length: 10 }, (_, j) => exchange('m', huge(i + j), '200')));
    }
    const res = await epp.adminGet('/state/decisions?limit=50');
    const text = await res.text();
    expect(res.status).toBe(200);
    expect(text.length).toBeLessThan(50 * 1024);
    const ids = (JSON.parse(text) as { decisions: Array<{ requestId: string }> }).decisions.map(
      (d) => d.requestId,
    );
    expect(ids.filter((id) => id.includes('chars, sha256')).length).toBe(50);
    expect(new Set(ids).size).toBe(ids.length);
    // Debug logs name each request; none carries a whole 1 MiB id.
    expect(epp.logs().length).toBeLessThan(5 * 1024 * 1024);
  }, 60_000);
});
