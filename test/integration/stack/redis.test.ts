// The docker-compose topology without Docker: the stack with its state in
// Redis (EPP and cache-indexer), plus a second EPP replica behind its own
// gateway sharing that Redis. Both replicas route, and each sees the other's
// decisions and the prefix the indexer learned from KV events.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
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

const PREFIX = Array.from({ length: 300 }, (_, i) => `Clause ${i} applies. `).join('');

describe('stack with Redis and two EPP replicas', () => {
  let redis: RedisServer;
  let stack: TestStack;
  let gw2: string;
  let admin2: string;

  beforeAll(async () => {
    redis = await startRedis();
    stack = await startTestStack({ profile: examplePath('epp-kv-cache-aware.yaml'), redisUrl: redis.url });
    ({ adminUrl: admin2, gatewayUrl: gw2 } = await startSecondRoute(stack, {
      eppName: 'epp-2',
      gatewayName: 'gw-2',
      configFile: `${stack.dir}/profile.yaml`,
      eppArgs: ['--redis-url', redis.url],
    }));
  }, 60_000);

  afterAll(async () => {
    await stopAllSpawned();
    await stack?.stop();
    await redis?.stop();
  });

  const post = (url: string, prompt: string, id: string) =>
    fetch(`${url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': id },
      body: JSON.stringify({ model: 'mock-model', prompt, max_tokens: 2 }),
    });

  it('routes through both replicas, which share decisions and the prefix index', async () => {
    const id1 = randomUUID();
    const r1 = await post(stack.gatewayUrl, `${PREFIX} first`, id1);
    expect(r1.status).toBe(200);
    await r1.text();
    // Replica 2 sees replica 1's decision: the state is shared.
    const holder = (await decisionFor(admin2, id1)).endpoint;
    const candidates = stack.models.map((m) => m.endpoint!);
    await eventually(
      async () => {
        const res = await matchSort(stack.indexerUrl, {
          model: 'mock-model',
          prompt: `${PREFIX} x`,
          candidates,
        });
        return res[0]?.endpoint === holder && res[0].hitRate > 0.8;
      },
      10_000,
      'the Redis-backed index to hold the prefix',
      100,
    );
    // Replica 2 sends the same prefix to the same pod.
    for (let i = 0; i < 3; i++) {
      const id = randomUUID();
      const r = await post(gw2, `${PREFIX} again ${i}`, id);
      expect(r.status).toBe(200);
      await r.text();
      expect((await decisionFor(admin2, id)).endpoint).toBe(holder);
      expect((await decisionFor(stack.adminUrl, id)).endpoint).toBe(holder);
    }
  });
});
