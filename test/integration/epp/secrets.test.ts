// No secret reaches the logs: an EPP started with a password in --redis-url
// and an --admin-token, at debug level, through start-up, requests and
// shutdown, never prints either (the start-up line shows the URL redacted).
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, expect, test } from 'vitest';
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

afterEach(async () => {
  await epp?.stop();
  epp = undefined;
});

afterAll(async () => {
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

test('--redis-url-file and --admin-token-file keep both secrets out of argv (/proc/PID/cmdline) and the logs', async () => {
  // A password with every character that has a meaning in a URL, percent-encoded in the file.
  const hard = 'p/w@x:y?z#';
  const admin = new Redis(redis.port, '127.0.0.1', { password: PASSWORD });
  await admin.config('SET', 'requirepass', hard);
  admin.disconnect();
  try {
    const dir = mkdtempSync(join(tmpdir(), 'epp-secrets-'));
    const urlFile = join(dir, 'redis-url');
    const tokenFile = join(dir, 'admin-token');
    writeFileSync(urlFile, `redis://:${encodeURIComponent(hard)}@127.0.0.1:${redis.port}\n`);
    writeFileSync(tokenFile, `${TOKEN}\n`);
    epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'vllm-0', port: server.port }]),
      args: ['--log-level', 'debug', '--redis-url-file', urlFile],
      env: { ADMIN_TOKEN_FILE: tokenFile },
    });
    const cmdline = readFileSync(`/proc/${epp.proc.pid}/cmdline`, 'utf8');
    expect(cmdline).toContain('epp');
    expect(cmdline).not.toContain(TOKEN);
    expect(cmdline).not.toContain('p/w@x');
    expect(cmdline).not.toContain(encodeURIComponent(hard));
    // The token from the file guards /state/*; the Redis password from the file works.
    expect((await fetch(`${epp.adminUrl}/state/endpoints`)).status).toBe(401);
    const r = await fetch(`${epp.adminUrl}/state/endpoints`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { backend: string }).backend).toBe('redis');
    expect(await epp.stop()).toBe(0);
    const logs = epp.logs();
    expect(logs).not.toContain(TOKEN);
    expect(logs).not.toContain('p/w@x');
    expect(logs).not.toContain(encodeURIComponent(hard));
  } finally {
    const back = new Redis(redis.port, '127.0.0.1', { password: hard });
    await back.config('SET', 'requirepass', PASSWORD);
    back.disconnect();
  }
});
