// The docker-compose topology without Docker: the stack with its state in
// Redis (EPP and cache-indexer), plus a second EPP replica behind its own
// gateway sharing that Redis. Both replicas route, and each sees the other's
// decisions and the prefix the indexer learned from KV events.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';
import { startFn, stopAll, waitForHttp } from './procs.js';
import { decisionFor, eventually, examplePath, matchSort, startTestStack, type TestStack } from './stack.js';

const PREFIX = Array.from({ length: 300 }, (_, i) => `Clause ${i} applies. `).join('');

describe('stack with Redis and two EPP replicas', () => {
  let redis: RedisServer;
  let stack: TestStack;
  let gw2: string;
  let admin2: string;

  beforeAll(async () => {
    redis = await startRedis();
    stack = await startTestStack({ profile: examplePath('epp-kv-cache-aware.yaml'), redisUrl: redis.url });
    const grpc = await freePort();
    const admin = await freePort();
    const gwPort = await freePort();
    const epp = startFn(
      'epp',
      [
        '--config-file',
        `${stack.dir}/profile.yaml`,
        '--endpoints-file',
        stack.endpointsFile,
        '--redis-url',
        redis.url,
        '--grpc-port',
        String(grpc),
        '--grpc-bind',
        '127.0.0.1',
        '--grpc-health-port',
        '-1',
        '--metrics-port',
        '-1',
        '--admin-port',
        String(admin),
        '--admin-bind',
        '127.0.0.1',
      ],
      { name: 'epp-2' },
    );
    admin2 = `http://127.0.0.1:${admin}`;
    await waitForHttp(`${admin2}/readyz`, 30_000, epp);
    const gw = startFn('gateway-dev', ['--port', String(gwPort), '--epp', `127.0.0.1:${grpc}`], {
      name: 'gw-2',
    });
    gw2 = `http://127.0.0.1:${gwPort}`;
    await waitForHttp(`${gw2}/_gateway/healthz`, 15_000, gw);
  }, 60_000);

  afterAll(async () => {
    await stopAll();
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
    await eventually('the Redis-backed index to hold the prefix', async () => {
      const res = await matchSort(stack.indexerUrl, {
        model: 'mock-model',
        prompt: `${PREFIX} x`,
        candidates,
      });
      return res[0]?.endpoint === holder && res[0].hitRate > 0.8 ? true : undefined;
    });
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
