// mock-vllm's OpenAI API, metrics, prefix cache and queueing, through a real
// process (`node bin/hermes-router.js mock-vllm`).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';
import { renderChat } from '../../../src/request/chat-template.js';
import { estimateTokens } from '../../../src/request/tokens.js';
import { metricValue, postJson, sseEvents, spawnFunction, type Spawned } from './spawn.js';

const MODEL = 'test-model';
let mock: Spawned;
let legacyBoth: Spawned;
let legacyOnly: Spawned;
let queued: Spawned;

async function startMock(extra: string[]): Promise<Spawned> {
  const port = await freePort();
  return spawnFunction(['mock-vllm', '--port', String(port), '--model', MODEL, ...extra], port, '/health');
}

beforeAll(async () => {
  [mock, legacyBoth, legacyOnly, queued] = await Promise.all([
    startMock(['--time-scale', '50']),
    startMock(['--legacy-metrics']),
    startMock(['--legacy-metrics', 'only']),
    // One seat and ~200 ms per request: concurrent requests must queue.
    startMock(['--max-num-seqs', '1', '--decode-ms-per-token', '20', '--time-scale', '1']),
  ]);
});

afterAll(async () => {
  await Promise.all([mock, legacyBoth, legacyOnly, queued].map((s) => s?.stop()));
});

describe('mock-vllm OpenAI API', () => {
  it('answers a chat completion as JSON with usage counted by the simple tokenizer', async () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Say hi.' },
    ];
    const { status, json } = await postJson(`${mock.url}/v1/chat/completions`, {
      model: MODEL,
      messages,
      max_tokens: 5,
    });
    expect(status).toBe(200);
    expect(json.object).toBe('chat.completion');
    expect(json.model).toBe(MODEL);
    expect(String(json.id)).toMatch(/^chatcmpl-/);
    const choice = (json.choices as Array<Record<string, unknown>>)[0]!;
    expect((choice.message as { role: string }).role).toBe('assistant');
    expect((choice.message as { content: string }).content).toHaveLength(20);
    expect(choice.finish_reason).toBe('length');
    const usage = json.usage as Record<string, number>;
    expect(usage.prompt_tokens).toBe(estimateTokens(renderChat(messages)));
    expect(usage.completion_tokens).toBe(5);
    expect(usage.total_tokens).toBe(usage.prompt_tokens! + 5);
  });

  it('streams a completion as SSE, with the usage chunk last when include_usage is set', async () => {
    const { status, events, headers } = await sseEvents(`${mock.url}/v1/completions`, {
      model: MODEL,
      prompt: 'Once upon a time',
      max_tokens: 4,
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(status).toBe(200);
    expect(headers.get('content-type')).toContain('text/event-stream');
    expect(events.at(-1)).toBe('[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e) as Record<string, unknown>);
    expect(chunks.every((c) => c.object === 'text_completion')).toBe(true);
    const texts = chunks.flatMap((c) => (c.choices as Array<{ text: string }>).map((x) => x.text)).join('');
    expect(texts).toHaveLength(16);
    const finish = chunks
      .flatMap((c) => c.choices as Array<{ finish_reason: string | null }>)
      .filter((x) => x.finish_reason);
    expect(finish.map((x) => x.finish_reason)).toEqual(['length']);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
  });

  it('streams chat chunks with the role first and no usage chunk unless asked', async () => {
    const { events } = await sseEvents(`${mock.url}/v1/chat/completions`, {
      model: MODEL,
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 3,
      stream: true,
    });
    const chunks = events.slice(0, -1).map(
      (e) =>
        JSON.parse(e) as {
          object: string;
          choices: Array<{ delta: Record<string, string> }>;
          usage?: unknown;
        },
    );
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks[0]!.choices[0]!.delta.role).toBe('assistant');
    expect(chunks.some((c) => c.usage)).toBe(false);
  });

  it('lists its model and answers errors OpenAI-style', async () => {
    const models = (await (await fetch(`${mock.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
    const unknown = await postJson(`${mock.url}/v1/completions`, { model: 'other', prompt: 'x' });
    expect(unknown.status).toBe(404);
    expect((unknown.json.error as { message: string }).message).toContain('other');
    const bad = await postJson(`${mock.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: -1 });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({ type: 'invalid_request_error', param: 'max_tokens' });
    const noPrompt = await postJson(`${mock.url}/v1/chat/completions`, { model: MODEL });
    expect(noPrompt.status).toBe(400);
  });

  it('serves repeated prompts from its prefix cache and counts hits in vLLM metrics', async () => {
    const prompt = 'A long shared system prompt. '.repeat(40); // 1160 bytes = 290 tokens = 18 full blocks
    const before = await (await fetch(`${mock.url}/metrics`)).text();
    const first = await postJson(`${mock.url}/v1/completions`, { model: MODEL, prompt, max_tokens: 2 });
    const second = await postJson(`${mock.url}/v1/completions`, {
      model: MODEL,
      prompt: prompt + 'tail',
      max_tokens: 2,
    });
    expect(first.headers.get('x-mock-vllm-cached-tokens')).toBe('0');
    expect(second.headers.get('x-mock-vllm-cached-tokens')).toBe(String(18 * 16));
    expect(
      (second.json.usage as { prompt_tokens_details: { cached_tokens: number } }).prompt_tokens_details
        .cached_tokens,
    ).toBe(288);
    const after = await (await fetch(`${mock.url}/metrics`)).text();
    const hits = (t: string) => metricValue(t, 'vllm:prefix_cache_hits_total', `model_name="${MODEL}"`) ?? 0;
    const queries = (t: string) =>
      metricValue(t, 'vllm:prefix_cache_queries_total', `model_name="${MODEL}"`) ?? 0;
    expect(hits(after) - hits(before)).toBe(288);
    expect(queries(after) - queries(before)).toBe(290 + 291);
  });

  it('exposes the metric names routers read', async () => {
    const text = await (await fetch(`${mock.url}/metrics`)).text();
    for (const name of [
      'vllm:num_requests_running',
      'vllm:num_requests_waiting',
      'vllm:kv_cache_usage_perc',
      'vllm:prefix_cache_queries_total',
      'vllm:prefix_cache_hits_total',
      'vllm:time_to_first_token_seconds_bucket',
      'vllm:inter_token_latency_seconds_bucket',
      'vllm:e2e_request_latency_seconds_bucket',
      'vllm:request_prompt_tokens_bucket',
      'vllm:request_generation_tokens_bucket',
    ]) {
      expect(text, name).toMatch(new RegExp(`^${name}\\{[^}]*model_name="${MODEL}"`, 'm'));
    }
    expect(text).toMatch(/^vllm:cache_config_info\{[^}]*block_size="16"[^}]*num_gpu_blocks="4096"/m);
    expect(text).not.toContain('vllm:gpu_cache_usage_perc');
    const both = await (await fetch(`${legacyBoth.url}/metrics`)).text();
    expect(both).toContain('vllm:gpu_cache_usage_perc{');
    expect(both).toContain('vllm:kv_cache_usage_perc{');
    const only = await (await fetch(`${legacyOnly.url}/metrics`)).text();
    expect(only).toContain('vllm:gpu_cache_usage_perc{');
    expect(only).not.toContain('vllm:kv_cache_usage_perc{');
  });

  it('queues requests beyond --max-num-seqs, visible in vllm:num_requests_waiting', async () => {
    const body = { model: MODEL, prompt: 'queue me '.repeat(20), max_tokens: 10 };
    const started = performance.now();
    const all = Promise.all(Array.from({ length: 4 }, () => postJson(`${queued.url}/v1/completions`, body)));
    let maxWaiting = 0;
    let maxRunning = 0;
    let kvUsage = 0;
    for (let i = 0; i < 20; i++) {
      await new Promise((r) => setTimeout(r, 25));
      const text = await (await fetch(`${queued.url}/metrics`)).text();
      maxWaiting = Math.max(maxWaiting, metricValue(text, 'vllm:num_requests_waiting') ?? 0);
      maxRunning = Math.max(maxRunning, metricValue(text, 'vllm:num_requests_running') ?? 0);
      kvUsage = Math.max(kvUsage, metricValue(text, 'vllm:kv_cache_usage_perc') ?? 0);
      if (maxWaiting === 3) break;
    }
    const results = await all;
    const elapsed = performance.now() - started;
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(maxRunning).toBe(1);
    expect(maxWaiting).toBeGreaterThanOrEqual(2);
    expect(kvUsage).toBeGreaterThan(0);
    // Four requests of ~9 decode steps x 20 ms, one at a time.
    expect(elapsed).toBeGreaterThan(4 * 9 * 20 * 0.9);
    const after = await (await fetch(`${queued.url}/metrics`)).text();
    expect(metricValue(after, 'vllm:num_requests_waiting')).toBe(0);
    expect(metricValue(after, 'vllm:num_requests_running')).toBe(0);
  });
});
