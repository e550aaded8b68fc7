// No secret reaches the logs: an EPP started with a password in --redis-url
// and an --admin-token, at debug level, through start-up, requests and
// shutdown, never prints either (the start-up line shows the URL redacted).
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { endpointsYaml, startEpp, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';
import { startRedis, type RedisServer } from '../../helpers/redis-server.js';

const PASSWORD = 's3cret';
const TOKEN = 'tok123';

let redis: RedisServer;
let server: FakeModel;
let epp: Epp | undefined;

beforeAll(async () => {
  redis = await startRedis();
  // Set after start: the helper's readiness probe is an unauthenticated PING.
  const admin = new Redis(redis.port, '127.0.0.1');
  await admin.config('SET', 'requirepass', PASSWORD);
  admin.disconnect();
  server = await fakeModel({ waiting: 0, kv: 0.1 });
}, 30_000);

afterAll(async () => {
  await epp?.stop();
  await server?.close();
  await redis?.stop();
});

test('--redis-url password and --admin-token never appear in stdout/stderr', async () => {
  epp = await startEpp({
    endpoints: endpointsYaml([{ name: 'vllm-0', port: server.port }]),
    args: [
      '--redis-url',
      `redis://:${PASSWORD}@127.0.0.1:${redis.port}`,
      '--admin-token',
      TOKEN,
      '--log-level',
      'debug',
      '--refresh-metrics-interval',
      '100ms',
    ],
    client: { deadlineMs: 5_000 },
  });
  // Some traffic and an authorised admin call, so debug lines of every kind are written.
  const client = epp.client;
  const ex = client.open();
  const v = await ex.sendRequest({
    headers: [
      [':method', 'POST'],
      [':path', '/v1/completions'],
      ['content-type', 'application/json'],
      ['authorization', `Bearer ${TOKEN}`],
    ],
    body: Buffer.from(JSON.stringify({ model: 'm', prompt: 'hello' })),
  });
  expect(v.kind).toBe('continue');
  ex.cancel();
  client.close();
  const r = await fetch(`${epp.adminUrl}/state/endpoints`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  expect(r.status).toBe(200); // the password was right: Redis was used
  expect(((await r.json()) as { backend: string }).backend).toBe('redis');
  expect(await epp.stop()).toBe(0);
  const logs = epp.logs();
  // The start-up line is there, with the URL redacted.
  expect(logs).toContain('starting endpoint picker');
  expect(logs).toContain(`redis://:***@127.0.0.1:${redis.port}`);
  expect(logs).toContain('endpoint picker ready');
  expect(logs).not.toContain(PASSWORD);
  expect(logs).not.toContain(TOKEN);
});
