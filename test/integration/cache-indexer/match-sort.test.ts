// The cache-indexer fed by REAL mock-vllm KV event streams: both following
// pods from an endpoints file (in memory) and binding a socket the pods
// connect to (index in Redis).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../../helpers/wait.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { chainBlockHashes } from '../../../src/kvcache/block-hash.js';
import { renderChat } from '../../../src/request/chat-template.js';
import { tokenizeSimple } from '../../../src/request/tokens.js';
import { Redis } from 'ioredis';
import { CacheIndexerClient } from '../../../src/datalayer/cache-indexer-client.js';
import { parseOpenAIRequest } from '../../../src/request/openai.js';
import { metricValue, postJson, spawnFunction, type Spawned } from '../mock-vllm/spawn.js';

const MODEL = 'idx-model';
const BLOCK_BYTES = 64; // 16 tokens x 4 bytes
const started: Spawned[] = [];
let redis: RedisServer | undefined;
const dir = mkdtempSync(join(tmpdir(), 'cache-indexer-'));

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
  await redis?.stop();
  rmSync(dir, { recursive: true, force: true });
});

interface Pod {
  s: Spawned;
  id: string;
}

async function startPod(extra: string[]): Promise<Pod> {
  const port = await freePort();
  const s = await spawnFunction(
    ['mock-vllm', '--port', String(port), '--model', MODEL, '--time-scale', '200', ...extra],
    port,
    '/health',
  );
  started.push(s);
  return { s, id: `127.0.0.1:${port}` };
}

type Result = { endpoint: string; hitRate: number; matchedBlocks: number; totalBlocks: number };

async function matchSort(indexer: Spawned, body: Record<string, unknown>): Promise<Result[]> {
  const r = await postJson(`${indexer.url}/match_sort`, { model: MODEL, ...body });
  expect(r.status).toBe(200);
  return r.json.results as Result[];
}

async function complete(pod: Pod, prompt: string): Promise<void> {
  const r = await postJson(`${pod.s.url}/v1/completions`, { model: MODEL, prompt, max_tokens: 1 });
  expect(r.status).toBe(200);
}

/** ZMQ drops events sent before the subscription is up: send throwaway prompts until the indexer sees each pod. */
async function warmUp(indexer: Spawned, pods: Pod[]): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const status = (await (await fetch(`${indexer.url}/pods`)).json()) as {
      pods: Array<{ pod: string; batches: number }>;
    };
    const seen = new Set(status.pods.filter((p) => p.batches > 0).map((p) => p.pod));
    const missing = pods.filter((p) => !seen.has(p.id));
    if (missing.length === 0) return;
    await Promise.all(missing.map((p) => complete(p, `warm-up ${i} for ${p.id} `.repeat(4))));
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the indexer never saw events from every pod');
}

/** Exactly `blocks` blocks of text (so hit rates are exact). */
function blocksOf(text: string, blocks: number): string {
  return text.repeat(Math.ceil((blocks * BLOCK_BYTES) / text.length)).slice(0, blocks * BLOCK_BYTES);
}

const variants = [
  { name: 'memory index, connecting to the pods listed in an endpoints file', redis: false, bind: false },
  { name: 'Redis index, pods connecting to a bound socket (topic attribution)', redis: true, bind: true },
];

describe.each(variants)('cache-indexer: $name', ({ redis: useRedis, bind }) => {
  let a: Pod;
  let b: Pod;
  let indexer: Spawned;

  beforeAll(async () => {
    const indexerPort = await freePort();
    const [kvA, kvB, sink] = await Promise.all([freePort(), freePort(), freePort()]);
    // B's cache holds 24 blocks, so a second long prompt evicts the first.
    const podFlags = (kv: number) =>
      bind ? ['--kv-events-connect', `tcp://127.0.0.1:${sink}`] : ['--kv-events-port', String(kv)];
    const args = ['cache-indexer', '--port', String(indexerPort), '--host', '127.0.0.1'];
    if (bind) args.push('--kv-events-bind', `tcp://127.0.0.1:${sink}`);
    if (useRedis) {
      redis = await startRedis();
      args.push('--redis-url', redis.url, '--redis-prefix', 'itest');
    }
    if (bind) {
      indexer = await spawnFunction(args, indexerPort, '/healthz');
      started.push(indexer);
      [a, b] = await Promise.all([
        startPod(podFlags(kvA)),
        startPod([...podFlags(kvB), '--kv-cache-blocks', '24']),
      ]);
    } else {
      [a, b] = await Promise.all([
        startPod(podFlags(kvA)),
        startPod([...podFlags(kvB), '--kv-cache-blocks', '24']),
      ]);
      const file = join(dir, `endpoints-${indexerPort}.yaml`);
      const ep = (p: Pod, kv: number) =>
        `- {address: 127.0.0.1, port: ${p.id.split(':')[1]}, kvEventsPort: ${kv}}`;
      writeFileSync(file, `endpoints:\n${ep(a, kvA)}\n${ep(b, kvB)}\n`);
      args.push('--endpoints-file', file);
      indexer = await spawnFunction(args, indexerPort, '/healthz');
      started.push(indexer);
    }
    await warmUp(indexer, [a, b]);
  });

  it('ranks the pod holding a shared prefix first, with the exact hit rate', async () => {
    const system = blocksOf('You are a careful assistant for the billing team. ', 20);
    await complete(a, system + 'First question: what is my balance?');
    const query = system + blocksOf('Second question, rather different: list my invoices. ', 5) + 'tail';
    const results = await eventually(
      async () => {
        const r = await matchSort(indexer, { prompt: query, candidates: [b.id, a.id, '10.9.9.9:8000'] });
        return r[0]?.endpoint === a.id && r;
      },
      5_000,
      'the index to reach the expected state',
    );
    expect(results.map((r) => r.endpoint)).toEqual([a.id, b.id, '10.9.9.9:8000']);
    expect(results[0]).toEqual({ endpoint: a.id, hitRate: 20 / 25, matchedBlocks: 20, totalBlocks: 25 });
    expect(results[1]).toMatchObject({ hitRate: 0, matchedBlocks: 0 });
    expect(results[2]).toMatchObject({ hitRate: 0, matchedBlocks: 0, totalBlocks: 25 });
  });

  it('matches chat requests rendered as the model server renders them, and token-id prompts', async () => {
    const sys = { role: 'system', content: blocksOf('Answer in French, briefly and politely. ', 12) };
    const first = [sys, { role: 'user', content: 'Bonjour, quelle heure est-il ?' }];
    const r = await postJson(`${a.s.url}/v1/chat/completions`, {
      model: MODEL,
      messages: first,
      max_tokens: 1,
    });
    expect(r.status).toBe(200);
    const second = [sys, { role: 'user', content: 'Et demain, il fera beau ?' }];
    // Expected: the leading blocks the two rendered prompts share.
    const h1 = chainBlockHashes(tokenizeSimple(renderChat(first)), 16);
    const t2 = tokenizeSimple(renderChat(second));
    const h2 = chainBlockHashes(t2, 16);
    let shared = 0;
    while (shared < Math.min(h1.length, h2.length) && h1[shared]!.equals(h2[shared]!)) shared++;
    expect(shared).toBeGreaterThanOrEqual(12);
    const results = await eventually(
      async () => {
        const x = await matchSort(indexer, { messages: second, candidates: [a.id, b.id] });
        return x[0]?.matchedBlocks === shared && x;
      },
      5_000,
      'the index to reach the expected state',
    );
    expect(results[0]).toEqual({
      endpoint: a.id,
      hitRate: shared / h2.length,
      matchedBlocks: shared,
      totalBlocks: h2.length,
    });
    const byTokens = await matchSort(indexer, { token_ids: Array.from(t2), candidates: [b.id, a.id] });
    expect(byTokens[0]).toEqual(results[0]);
  });

  it('forgets blocks a pod evicted (BlockRemoved)', async () => {
    const x = blocksOf('Prompt X talks about the weather in great detail. ', 20);
    await complete(b, x);
    const held = await eventually(
      async () => {
        const r = await matchSort(indexer, { prompt: x, candidates: [a.id, b.id] });
        return r[0]?.matchedBlocks === 20 && r;
      },
      5_000,
      'the index to reach the expected state',
    );
    expect(held[0]).toMatchObject({ endpoint: b.id, hitRate: 1 });
    // 20 new blocks + 1 for the output in a 24-block cache: 17 of X's 20 go, tail first.
    await complete(b, blocksOf('Prompt Y is about something else entirely, cooking. ', 20));
    const after = await eventually(
      async () => {
        const r = await matchSort(indexer, { prompt: x, candidates: [a.id, b.id] });
        return r.find((e) => e.endpoint === b.id)?.matchedBlocks === 3 && r;
      },
      5_000,
      'the index to reach the expected state',
    );
    expect(after.find((e) => e.endpoint === b.id)).toEqual({
      endpoint: b.id,
      hitRate: 3 / 20,
      matchedBlocks: 3,
      totalBlocks: 20,
    });
    const metrics = await (await fetch(`${indexer.url}/metrics`)).text();
    expect(metricValue(metrics, 'cache_indexer_events_total', 'type="BlockRemoved"')).toBeGreaterThan(0);
    expect(metricValue(metrics, 'cache_indexer_lookups_total', 'status="ok"')).toBeGreaterThan(0);
    expect(metricValue(metrics, 'cache_indexer_sequence_gaps_total')).toBe(0);
  });

  it("answers the EPP's own client (src/datalayer/cache-indexer-client.ts)", async () => {
    const prompt = blocksOf('You are a careful assistant for the billing team. ', 20) + 'Third question.';
    const { request } = parseOpenAIRequest(
      '/v1/completions',
      JSON.stringify({ model: MODEL, prompt }),
      {},
      'r1',
    );
    const client = new CacheIndexerClient();
    try {
      const out = await client.matchSort(`${indexer.url}/match_sort`, request, [b.id, a.id], 2_000);
      expect(out.status).toBe('ok');
      expect(out.hitRates?.get(a.id)).toBeCloseTo(20 / Math.floor(tokenizeSimple(prompt).length / 16));
      expect(out.hitRates?.get(b.id)).toBe(0);
    } finally {
      await client.close();
    }
    if (useRedis) {
      const r = new Redis(redis!.url);
      try {
        const podSet = await r.smembers(`itest:pod:${a.id}`);
        expect(podSet.length).toBeGreaterThan(0);
        expect(await r.ttl(`itest:b:${podSet[0]}`)).toBeGreaterThan(0);
      } finally {
        r.disconnect();
      }
    }
  });

  it('answers bad input with 400 and an OpenAI-style error', async () => {
    for (const body of [
      { candidates: ['a:1'] },
      { prompt: 'x' },
      { prompt: 'x', messages: [{ role: 'user', content: 'y' }], candidates: [] },
      { token_ids: [1, -2], candidates: ['a:1'] },
      { messages: [{ content: 'no role' }], candidates: ['a:1'] },
    ]) {
      const r = await postJson(`${indexer.url}/match_sort`, { model: MODEL, ...body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error).toMatchObject({ type: 'invalid_request_error', code: 400 });
    }
    const notJson = await fetch(`${indexer.url}/match_sort`, { method: 'POST', body: '{' });
    expect(notJson.status).toBe(400);
    const health = (await (await fetch(`${indexer.url}/healthz`)).json()) as {
      status: string;
      store: string;
    };
    expect(health).toMatchObject({ status: 'ok', store: useRedis ? 'redis' : 'memory' });
  });
});
