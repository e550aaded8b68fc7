// Least privilege and secrets, checked against a spawned EPP:
//  - the admin API listens on 127.0.0.1 unless told otherwise;
//  - with --admin-token, /state/* needs `Authorization: Bearer <token>`
//    (probes on /healthz and /readyz stay open);
//  - neither the admin token nor a Redis password (in the URL or in
//    REDIS_PASSWORD) ever appears in the EPP's stdout/stderr, even at debug
//    level, with Redis unreachable (so connection errors get logged) and
//    with rejected admin calls;
//  - ext_proc with --secure-serving speaks TLS only.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointsYaml, startEpp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { freePort } from '../helpers/ports.js';
import { stopAllSpawned } from '../helpers/spawn.js';
import { COMPLETION_HEADERS } from './epp-harness.js';

const TOKEN = 'tok-5ecr3t-ADMIN-7f3a9c';
const REDIS_PASSWORD = 'pw-5ecr3t-REDIS-91be20';
const ENV_REDIS_PASSWORD = 'pw-5ecr3t-ENV-44d1aa';
let model: FakeModel;

beforeAll(async () => {
  model = await fakeModel();
});

afterAll(async () => {
  await model.close();
  await stopAllSpawned();
});

/** Local addresses (hex, as in /proc/net/tcp*) of sockets listening on `port`. */
function listenAddresses(port: number): string[] {
  const out: string[] = [];
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 4 || cols[3] !== '0A') continue; // 0A = LISTEN
      const [addr, p] = cols[1]!.split(':');
      if (parseInt(p!, 16) === port) out.push(addr!);
    }
  }
  return out;
}

const LOOPBACK_V4 = '0100007F';
const LOOPBACK_V6 = '00000000000000000000000001000000';

describe('security', () => {
  it('the admin API binds 127.0.0.1 by default and requires the bearer token when configured', async () => {
    const epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'm0', port: model.port }]),
      args: ['--admin-token', TOKEN, '--log-level', 'debug'],
    });
    const addrs = listenAddresses(epp.adminPort);
    if (process.platform === 'linux')
      expect(addrs.length, 'admin socket found in /proc/net/tcp*').toBeGreaterThan(0);
    for (const a of addrs) expect([LOOPBACK_V4, LOOPBACK_V6], `admin listens on ${a}`).toContain(a);
    const get = (path: string, auth?: string) =>
      fetch(`${epp.adminUrl}${path}`, { headers: auth ? { authorization: auth } : {} });
    expect((await get('/state/endpoints')).status).toBe(401);
    expect((await get('/state/endpoints', 'Bearer wrong')).status).toBe(401);
    expect((await get('/state/endpoints', `Bearer ${TOKEN}x`)).status).toBe(401);
    // A malformed Authorization header is refused too (hono answers 400 invalid_request, RFC 6750 §3.1).
    expect([400, 401]).toContain((await get('/state/endpoints', TOKEN)).status);
    expect([400, 401]).toContain(
      (await get('/state/endpoints', `Basic ${Buffer.from(`a:${TOKEN}`).toString('base64')}`)).status,
    );
    expect((await get('/state/endpoints', `Bearer ${TOKEN}`)).status).toBe(200);
    expect((await get('/healthz')).status).toBe(200);
    const out = epp.proc.output();
    expect(out).not.toContain(TOKEN);
    await epp.proc.stop();
    expect(epp.proc.output()).not.toContain(TOKEN);
  });

  it('no Redis password (URL or REDIS_PASSWORD) and no admin token in the logs, Redis unreachable, debug level', async () => {
    const deadPort = await freePort(); // nothing listens there
    // Redis is unreachable, so the EPP never gets ready: started once its admin port listens.
    const epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'm0', port: model.port }]),
      args: [
        '--redis-url',
        `redis://default:${REDIS_PASSWORD}@127.0.0.1:${deadPort}/0`,
        '--log-level',
        'debug',
      ],
      env: { ADMIN_TOKEN: TOKEN, REDIS_PASSWORD: ENV_REDIS_PASSWORD },
      ready: 'admin-port',
      readyTimeoutMs: 30_000,
      client: { deadlineMs: 10_000 },
    });
    // Exercise the paths that log: routing with Redis down, rejected admin calls, scraping.
    for (let i = 0; i < 3; i++) {
      const ex = epp.client.open();
      await ex
        .sendRequest({
          headers: COMPLETION_HEADERS,
          body: Buffer.from(JSON.stringify({ model: 'm', prompt: `p${i}` })),
        })
        .catch(() => undefined);
      ex.cancel();
    }
    await fetch(`${epp.adminUrl}/state/endpoints`, { headers: { authorization: 'Bearer nope' } });
    await fetch(`${epp.adminUrl}/readyz`);
    await new Promise((r) => setTimeout(r, 1_500));
    await epp.stop();
    const out = epp.logs();
    expect(out.length).toBeGreaterThan(0);
    // Redis was really unreachable and that was logged (so the redaction was exercised).
    expect(out.toLowerCase()).toMatch(/redis/);
    for (const secret of [REDIS_PASSWORD, ENV_REDIS_PASSWORD, TOKEN, encodeURIComponent(REDIS_PASSWORD)]) {
      expect(out, `secret ${secret.slice(0, 8)}… leaked`).not.toContain(secret);
    }
  }, 60_000);

  it('--secure-serving: ext_proc answers TLS clients and refuses plaintext ones', async () => {
    const epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'm0', port: model.port }]),
      args: ['--secure-serving', '--log-level', 'warn'],
    });
    const body = Buffer.from(JSON.stringify({ model: 'm', prompt: 'tls' }));
    const tls = epp.connect({ tls: true, deadlineMs: 5_000 });
    const ex = tls.open();
    const v = await ex.sendRequest({ headers: COMPLETION_HEADERS, body });
    expect(v.kind).toBe('continue');
    ex.cancel();
    const plain = epp.connect({ deadlineMs: 3_000 });
    const ex2 = plain.open();
    await expect(ex2.sendRequest({ headers: COMPLETION_HEADERS, body })).rejects.toThrow();
    await epp.proc.stop();
  });
});
