// Redis over TLS with a real redis-server: a CA and a server certificate for
// 127.0.0.1 are made here, redis-server listens on a TLS port only, and the
// StateStore (and the cache-indexer's block store) connect with `rediss://`
// plus REDIS_TLS_CA_FILE. A wrong CA must fail with a TLS error the operator
// can read, while the degraded wrapper keeps answering.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisIndexStore } from '../../../src/cacheindexer/redis-store.js';
import { createRedisStateStore } from '../../../src/state/create-store.js';
import { createRedisClient, RedisStateStore } from '../../../src/state/redis-store.js';
import { freePort } from '../../helpers/ports.js';
import { commit, ep } from './contract.js';

const PASSWORD = 'p@ss:w/rd%tls';

interface TlsRedis {
  port: number;
  proc: ChildProcess;
}

let dir: string;
let caFile: string;
let wrongCaFile: string;
let open: TlsRedis;
let authed: TlsRedis;

async function makeCa(cn: string): Promise<{ cert: string; key: string }> {
  const ca = await generate([{ name: 'commonName', value: cn }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    ],
  });
  return { cert: ca.cert, key: ca.private };
}

/** Answers true once the TLS port completes a handshake and replies to PING (any reply). */
function tlsPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false }, () => s.write('PING\r\n'));
    s.setTimeout(300, () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(false));
    s.once('data', () => {
      s.destroy();
      resolve(true);
    });
  });
}

async function startTlsRedis(extra: string[] = []): Promise<TlsRedis> {
  const port = await freePort();
  const proc = spawn(
    process.env.REDIS_SERVER_BIN ?? 'redis-server',
    [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      join(dir, 'server.crt'),
      '--tls-key-file',
      join(dir, 'server.key'),
      '--tls-ca-cert-file',
      caFile,
      '--tls-auth-clients',
      'no',
      '--save',
      '',
      '--appendonly',
      'no',
      ...extra,
    ],
    { stdio: 'ignore' },
  );
  proc.on('error', () => undefined);
  const end = Date.now() + 10_000;
  while (Date.now() < end) {
    if (await tlsPing(port)) return { port, proc };
    await new Promise((r) => setTimeout(r, 50));
  }
  proc.kill('SIGKILL');
  throw new Error(`redis-server with --tls-port ${port} did not come up`);
}

async function stop(r: TlsRedis | undefined): Promise<void> {
  if (!r || r.proc.exitCode !== null || r.proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    r.proc.once('exit', () => resolve());
    r.proc.kill('SIGKILL');
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'redis-tls-'));
  const ca = await makeCa('hermes-test-ca');
  const wrong = await makeCa('some-other-ca');
  const server = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    ca,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  });
  caFile = join(dir, 'ca.crt');
  wrongCaFile = join(dir, 'wrong-ca.crt');
  writeFileSync(caFile, ca.cert);
  writeFileSync(wrongCaFile, wrong.cert);
  writeFileSync(join(dir, 'server.crt'), server.cert);
  writeFileSync(join(dir, 'server.key'), server.private, { mode: 0o600 });
  [open, authed] = await Promise.all([startTlsRedis(), startTlsRedis(['--requirepass', PASSWORD])]);
});

afterAll(async () => {
  await Promise.all([stop(open), stop(authed)]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One commit, a snapshot that shows it, a release, a snapshot without it. */
async function roundTrip(
  store: Pick<RedisStateStore, 'replaceEndpoints' | 'commitPick' | 'readSnapshot' | 'release'>,
): Promise<void> {
  await store.replaceEndpoints([ep(1), ep(2)]);
  const receipt = await store.commitPick(commit('tls-r1', { inFlight: [ep(2).id] }));
  const during = await store.readSnapshot({});
  expect(during.endpoints.map((e) => e.id)).toEqual([ep(1).id, ep(2).id]);
  expect(during.inFlight.get(ep(2).id)).toBe(1);
  await store.release(receipt);
  const after = await store.readSnapshot({});
  expect(after.inFlight.get(ep(2).id) ?? 0).toBe(0);
}

describe('StateStore over rediss://', () => {
  it('commits, reads and releases through a TLS-only redis-server with REDIS_TLS_CA_FILE', async () => {
    const env = { REDIS_TLS_CA_FILE: caFile };
    const store = new RedisStateStore(createRedisClient(`rediss://127.0.0.1:${open.port}`, { env }), {
      pool: 'tls-bare',
    });
    try {
      await store.connect();
      await roundTrip(store);
    } finally {
      await store.close();
    }
    // The same through the wrapper EPPs run on: it must not be degraded.
    const wrapped = await createRedisStateStore({
      redisUrl: `rediss://127.0.0.1:${open.port}`,
      pool: 'tls-wrapped',
      env,
    });
    try {
      expect(wrapped.health().degraded).toBe(false);
      await roundTrip(wrapped);
      expect(wrapped.health().degraded).toBe(false);
      expect(wrapped.counters.errors).toBe(0);
    } finally {
      await wrapped.close();
    }
  });

  it('without the CA (Node default CAs) the handshake is refused with a certificate error', async () => {
    const store = new RedisStateStore(createRedisClient(`rediss://127.0.0.1:${open.port}`, { env: {} }), {
      pool: 'tls-noca',
    });
    try {
      await expect(store.connect()).rejects.toThrow(/certificate/i);
    } finally {
      await store.close();
    }
  });

  it('a wrong CA fails with a clear TLS error and the degraded wrapper keeps answering', async () => {
    const warnings: Array<{ obj: Record<string, unknown>; msg: string }> = [];
    const logger = {
      warn: (obj: object, msg: string) => warnings.push({ obj: obj as Record<string, unknown>, msg }),
      info: () => undefined,
    };
    // The bare store: the error names the certificate problem.
    const bare = new RedisStateStore(
      createRedisClient(`rediss://127.0.0.1:${open.port}`, { env: { REDIS_TLS_CA_FILE: wrongCaFile } }),
      { pool: 'tls-wrong-bare' },
    );
    try {
      await expect(bare.connect()).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    } finally {
      await bare.close();
    }

    const store = await createRedisStateStore({
      redisUrl: `rediss://127.0.0.1:${open.port}`,
      pool: 'tls-wrong',
      env: { REDIS_TLS_CA_FILE: wrongCaFile },
      logger,
      probeIntervalMs: 100,
    });
    try {
      expect(store.health().degraded).toBe(true);
      const w = warnings.find((x) => x.msg.includes('unavailable'));
      expect(w, JSON.stringify(warnings)).toBeDefined();
      expect(String(w!.obj.err)).toMatch(/self[- ]signed|unable to verify|certificate/i);
      // Every call still answers, from local state.
      await roundTrip(store);
      expect(store.health().degraded).toBe(true);
      expect(store.counters.fallbacks).toBeGreaterThan(0);
      // Probes keep failing (the certificate does not change), without throwing.
      await new Promise((r) => setTimeout(r, 350));
      expect(await store.probeNow()).toBe(false);
    } finally {
      await store.close();
    }
  });

  it('takes the password from the URL (percent-encoded) against requirepass', async () => {
    const env = { REDIS_TLS_CA_FILE: caFile };
    const url = `rediss://default:${encodeURIComponent(PASSWORD)}@127.0.0.1:${authed.port}`;
    const store = await createRedisStateStore({ redisUrl: url, pool: 'tls-auth', env });
    try {
      expect(store.health().degraded).toBe(false);
      await roundTrip(store);
      expect(store.health().degraded).toBe(false);
    } finally {
      await store.close();
    }
    // REDIS_PASSWORD works too when the URL has none; a wrong one is refused.
    const viaEnv = new RedisStateStore(
      createRedisClient(`rediss://127.0.0.1:${authed.port}`, { env: { ...env, REDIS_PASSWORD: PASSWORD } }),
      { pool: 'tls-auth-env' },
    );
    try {
      await viaEnv.connect();
      await roundTrip(viaEnv);
    } finally {
      await viaEnv.close();
    }
    const wrong = new RedisStateStore(
      createRedisClient(`rediss://default:nope@127.0.0.1:${authed.port}`, { env }),
      { pool: 'tls-auth-wrong' },
    );
    try {
      await expect(wrong.connect().then(() => wrong.ping())).rejects.toThrow(/WRONGPASS|invalid|NOAUTH/i);
    } finally {
      await wrong.close();
    }
  });
});

describe("cache-indexer's Redis block store over rediss://", () => {
  async function indexStore(url: string, env: NodeJS.ProcessEnv): Promise<RedisIndexStore> {
    const s = new RedisIndexStore({ url, prefix: `tls-ix-${Math.random().toString(36).slice(2)}`, env });
    await s.connect();
    return s;
  }

  it('stores and looks up blocks with REDIS_TLS_CA_FILE and a password in the URL', async () => {
    const url = `rediss://:${encodeURIComponent(PASSWORD)}@127.0.0.1:${authed.port}`;
    const s = await indexStore(url, { REDIS_TLS_CA_FILE: caFile });
    try {
      await s.apply([{ pod: '10.0.0.1:8000', add: ['k1', 'k2'] }]);
      expect(await s.lookup(['k1', 'k2', 'k3'], ['10.0.0.1:8000', '10.0.0.2:8000'])).toEqual([2, 0]);
    } finally {
      await s.close();
    }
  });

  it('a wrong CA is refused with a certificate error', async () => {
    const s = new RedisIndexStore({
      url: `rediss://127.0.0.1:${open.port}`,
      env: { REDIS_TLS_CA_FILE: wrongCaFile },
    });
    try {
      await expect(s.connect()).rejects.toThrow(/self[- ]signed|unable to verify|certificate/i);
    } finally {
      await s.close();
    }
  });
});
