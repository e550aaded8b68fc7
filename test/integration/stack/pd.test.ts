// A PD request end to end: gateway-dev -> EPP (epp-pd-bucket) -> the
// group's leader (pd-proxy) -> the prefill pod the EPP named -> the decode
// pod it named, all real processes. Checked three ways: the EPP's decision,
// the proxy's response headers, and each mock's own request counters.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decisionFor, examplePath, startTestStack, type TestStack } from './stack.js';

const P = 'x-openfuyao-prefill-pod-address-port';
const D = 'x-openfuyao-decode-pod-address-port';

/** mock_vllm_requests_total{kind} of one mock server. */
async function servedKinds(endpoint: string): Promise<Record<string, number>> {
  const text = await (await fetch(`http://${endpoint}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^mock_vllm_requests_total\{[^}]*kind="(\w+)"[^}]*\} (\d+(?:\.\d+)?)/gm))
    out[m[1]!] = Number(m[2]);
  return out;
}

describe('PD-disaggregated stack', () => {
  let stack: TestStack;
  let leader: string;
  let prefills: string[];
  let decodes: string[];

  beforeAll(async () => {
    stack = await startTestStack({
      profile: examplePath('epp-pd-bucket.yaml'),
      pd: true,
      pdPrefill: 2,
      pdDecode: 2,
    });
    leader = stack.plan.processes.find((p) => p.role === 'pd-leader')!.endpoint!;
    prefills = stack.models.filter((m) => m.name.startsWith('prefill')).map((m) => m.endpoint!);
    decodes = stack.models.filter((m) => m.name.startsWith('decode')).map((m) => m.endpoint!);
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
  });

  const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('runs each request leader -> prefill pod -> decode pod, as the EPP named them', async () => {
    const named: Array<{ prefill: string; decode: string }> = [];
    for (let i = 0; i < 6; i++) {
      const id = randomUUID();
      const stream = i % 2 === 1;
      // Long and short prompts, so the bucket scorer has something to separate.
      const prompt = (i % 3 === 0 ? 'long context '.repeat(120) : 'short ') + `q${i}`;
      const r = await post(
        stack.gatewayUrl,
        { model: 'mock-model', prompt, max_tokens: 3, stream },
        { 'x-request-id': id },
      );
      expect(r.status).toBe(200);
      const text = await r.text();
      if (stream) expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      else expect((JSON.parse(text) as { object: string }).object).toBe('text_completion');
      expect(r.headers.get('x-mock-vllm-kind')).toBe('decode');

      const d = await decisionFor(stack.adminUrl, id);
      expect(d.endpoint).toBe(leader);
      expect(prefills).toContain(d.prefill);
      expect(decodes).toContain(d.decode);
      expect(r.headers.get('x-hermes-pd-prefill')).toBe(d.prefill);
      expect(r.headers.get('x-hermes-pd-decode')).toBe(d.decode);
      named.push({ prefill: d.prefill!, decode: d.decode! });
    }
    // Each mock saw exactly the requests the EPP sent its way, in its role.
    for (const p of prefills) {
      const k = await servedKinds(p);
      expect(k.prefill ?? 0).toBe(named.filter((n) => n.prefill === p).length);
      expect(k.decode ?? 0).toBe(0);
    }
    for (const dd of decodes) {
      const k = await servedKinds(dd);
      expect(k.decode ?? 0).toBe(named.filter((n) => n.decode === dd).length);
      expect(k.prefill ?? 0).toBe(0);
    }
  });

  it('does not let a client pick the PD pods through the gateway', async () => {
    const id = randomUUID();
    const r = await post(
      stack.gatewayUrl,
      { model: 'mock-model', prompt: 'hello', max_tokens: 2 },
      { 'x-request-id': id, [P]: '10.1.2.3:8000', [D]: '10.1.2.3:8001' },
    );
    expect(r.status).toBe(200);
    const d = await decisionFor(stack.adminUrl, id);
    expect(r.headers.get('x-hermes-pd-prefill')).toBe(d.prefill);
    expect(r.headers.get('x-hermes-pd-decode')).toBe(d.decode);
  });

  it('leader: 400 for a pod outside its group, 502 when the named decode pod is down', async () => {
    const leaderUrl = `http://${leader}`;
    const bad = await post(
      leaderUrl,
      { model: 'mock-model', prompt: 'x' },
      { [P]: '10.1.2.3:8000', [D]: decodes[0]! },
    );
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');

    const victim = stack.models.find((m) => m.endpoint === decodes[1])!;
    await stack.procs.get(victim.name)!.stop();
    const down = await post(
      leaderUrl,
      { model: 'mock-model', prompt: 'x', max_tokens: 2 },
      { [P]: prefills[0]!, [D]: decodes[1]! },
    );
    expect(down.status).toBe(502);
    const err = (await down.json()) as { error: { message: string; type: string } };
    expect(err.error.type).toBe('server_error');
    expect(err.error.message).toContain(`decode pod ${decodes[1]} unreachable`);
  });
});
