// End to end through gateway-dev -> EPP (ext_proc) -> mock-vllm, all real
// processes: OpenAI-shaped answers (JSON and SSE), and prefix-aware routing
// under the KV-aware profile, with hit rates from the real cache-indexer
// fed by the mock servers' real KV events; the same prompts spread under
// the random profile.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopAllSpawned } from '../../helpers/spawn.js';
import {
  decisionFor,
  examplePath,
  matchSort,
  startSecondRoute,
  startTestStack,
  type TestStack,
} from './stack.js';
import { eventually } from '../../helpers/wait.js';

// ~1,600 tokens of shared prefix (4 bytes per token in the project's tokenizer).
const PREFIX = Array.from({ length: 400 }, (_, i) => `Rule ${i}: answer politely. `)
  .join('')
  .slice(0, 6400);

describe('aggregated stack under the KV-aware profile', () => {
  let stack: TestStack;
  const post = (url: string, path: string, body: unknown, requestId = randomUUID()) =>
    fetch(`${url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    stack = await startTestStack({ profile: examplePath('epp-kv-cache-aware.yaml') });
  }, 60_000);

  afterAll(async () => {
    await stack?.stop();
    await stopAllSpawned();
  });

  it('answers a chat completion OpenAI-shaped', async () => {
    const r = await post(stack.gatewayUrl, '/v1/chat/completions', {
      model: 'mock-model',
      messages: [{ role: 'user', content: 'Hello!' }],
      max_tokens: 4,
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('application/json');
    const body = (await r.json()) as {
      object: string;
      model: string;
      choices: Array<{ message: { role: string; content: string } }>;
      usage: { completion_tokens: number };
    };
    expect(body.object).toBe('chat.completion');
    expect(body.model).toBe('mock-model');
    expect(body.choices[0]!.message.role).toBe('assistant');
    expect(typeof body.choices[0]!.message.content).toBe('string');
    expect(body.usage.completion_tokens).toBe(4);
  });

  it('streams a completion as SSE ending in [DONE], with usage when asked', async () => {
    const r = await post(stack.gatewayUrl, '/v1/completions', {
      model: 'mock-model',
      prompt: 'Once upon a time',
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toContain('text/event-stream');
    const text = await r.text();
    const events = text
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => e.slice(6));
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events
      .slice(0, -1)
      .map(
        (e) => JSON.parse(e) as { object: string; choices: unknown[]; usage?: { completion_tokens: number } },
      );
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    expect(chunks.find((c) => c.usage)?.usage?.completion_tokens).toBe(3);
  });

  it('answers a bad request with the EPP 400 and never reaches a model server', async () => {
    const r = await post(stack.gatewayUrl, '/v1/chat/completions', { model: 'mock-model', messages: [] });
    expect(r.status).toBe(400);
  });

  it('sends prompts sharing a long prefix to the pod that holds the prefix', async () => {
    const firstId = randomUUID();
    const first = await post(
      stack.gatewayUrl,
      '/v1/completions',
      { model: 'mock-model', prompt: `${PREFIX} Question 0?`, max_tokens: 2 },
      firstId,
    );
    expect(first.status).toBe(200);
    await first.text();
    const holder = (await decisionFor(stack.adminUrl, firstId)).endpoint;
    const candidates = stack.models.map((m) => m.endpoint!);
    expect(candidates).toContain(holder);

    // The holder's KV events reach the indexer: it now reports the prefix there, and only there.
    const results = await eventually(
      async () => {
        const res = await matchSort(stack.indexerUrl, {
          model: 'mock-model',
          prompt: `${PREFIX} Question 1?`,
          candidates,
        });
        return res[0]?.endpoint === holder && res[0].hitRate > 0.8 && res;
      },
      10_000,
      'the cache-indexer to see the prefix on the holder',
      100,
    );
    for (const other of results.slice(1)) expect(other.hitRate).toBe(0);

    const chosen: string[] = [];
    for (let i = 1; i <= 6; i++) {
      const id = randomUUID();
      const r = await post(
        stack.gatewayUrl,
        '/v1/completions',
        { model: 'mock-model', prompt: `${PREFIX} Question ${i}?`, max_tokens: 2 },
        id,
      );
      expect(r.status).toBe(200);
      const body = (await r.json()) as { usage: { prompt_tokens_details?: { cached_tokens: number } } };
      chosen.push((await decisionFor(stack.adminUrl, id)).endpoint);
      // The model server really reused the prefix.
      expect(body.usage.prompt_tokens_details?.cached_tokens ?? 0).toBeGreaterThan(1000);
    }
    expect(chosen).toEqual(Array(6).fill(holder));
  });

  it('spreads the same prompts over the pods under the random profile (gateway in BUFFERED mode)', async () => {
    // A second EPP and gateway with the random profile, over the same model servers; this
    // gateway uses the ext_proc BUFFERED body mode, so both modes are exercised end to end.
    const second = await startSecondRoute(stack, {
      eppName: 'epp-random',
      gatewayName: 'gw-random',
      configFile: examplePath('epp-random.yaml'),
      gatewayArgs: ['--processing-mode', 'buffered'],
    });

    const chosen = new Set<string>();
    for (let i = 0; i < 9; i++) {
      const id = randomUUID();
      const r = await post(
        second.gatewayUrl,
        '/v1/completions',
        { model: 'mock-model', prompt: `${PREFIX} Question ${i}?`, max_tokens: 2 },
        id,
      );
      expect(r.status).toBe(200);
      await r.text();
      chosen.add((await decisionFor(second.adminUrl, id)).endpoint);
    }
    // All nine on one pod of three would happen with probability 3 * (1/3)^9 ≈ 0.00015.
    expect(chosen.size).toBeGreaterThanOrEqual(2);
  });
});
