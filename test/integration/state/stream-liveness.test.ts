// A stream whose gateway is gone releases its pick (issue 17): a silent,
// half-open connection is found by keepalive pings, a live but mute stream
// by the idle timeout, and a drain that cuts streams at SIGTERM writes their
// releases to Redis before the process exits. Without these the Director
// renews the leases of such picks forever.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { ExtProcClient } from '../../../src/gateway/extproc-client.js';
import {
  createExtProcServer,
  EXTPROC_TRANSPORTS,
  type ExtProcTransport,
  type KeepaliveOptions,
} from '../../../src/extproc/server.js';
import { endpointsYaml, startEpp } from '../../helpers/epp.js';
import { startRedis } from '../../helpers/redis-server.js';
import { stopAllSpawned } from '../../helpers/spawn.js';
import { memoryExtProcService } from '../../helpers/extproc-service.js';
import { sleep } from '../../helpers/wait.js';

const HEADERS: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/completions'],
  [':authority', 'gateway'],
  ['content-type', 'application/json'],
];
const BODY = Buffer.from(JSON.stringify({ model: 'm', prompt: 'still there?', stream: true }));

const cleanup: Array<() => unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
  await stopAllSpawned();
});

/** A TCP relay that can go silent: both sockets stay open, nothing more passes (a half-open peer). */
async function relay(targetPort: number): Promise<{ port: number; silence(): void }> {
  const pairs: Array<[Socket, Socket]> = [];
  const server: Server = createServer((down) => {
    const up = connect(targetPort, '127.0.0.1');
    down.pipe(up);
    up.pipe(down);
    pairs.push([down, up]);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    server.close();
  });
  return {
    port: (server.address() as AddressInfo).port,
    silence() {
      for (const [down, up] of pairs) {
        down.unpipe(up);
        up.unpipe(down);
        down.pause();
        up.pause();
      }
    },
  };
}

const NO_KEEPALIVE: KeepaliveOptions = { keepaliveTimeMs: 0, keepaliveTimeoutMs: 0 };

async function inProcessEpp(
  transport: ExtProcTransport,
  keepalive: KeepaliveOptions,
  streamIdleTimeoutMs = 0,
) {
  const { director, service, inFlight } = await memoryExtProcService({ streamIdleTimeoutMs });
  const server = createExtProcServer(service, { transport, maxReceiveMessageBytes: 4 << 20, keepalive });
  const port = await server.listen('127.0.0.1', 0);
  service.startRenewal();
  cleanup.push(() => {
    service.stopRenewal();
    server.forceShutdown();
  });
  return { port, director, inFlight };
}

function client(port: number): ExtProcClient {
  const c = new ExtProcClient({ target: `127.0.0.1:${port}` });
  cleanup.push(() => c.close());
  return c;
}

/** Routes one streamed request and leaves its response open, as a gateway waiting on the model does. */
async function openPick(c: ExtProcClient) {
  const ex = c.open();
  ex.done.catch(() => undefined);
  const v = await ex.sendRequest({ headers: HEADERS, body: BODY });
  expect(v.kind).toBe('continue');
  await ex.sendResponseHeaders([
    [':status', '200'],
    ['content-type', 'text/event-stream'],
  ]);
  return ex;
}

async function until(cond: () => Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(50);
  }
  return cond();
}

describe.each(EXTPROC_TRANSPORTS)('streams whose gateway is gone release their picks (%s)', (transport) => {
  it('a silent half-open connection: keepalive pings find it and the charge is released', async () => {
    const quiet = await inProcessEpp(transport, NO_KEEPALIVE); // no keepalive: the control
    const alive = await inProcessEpp(transport, { keepaliveTimeMs: 300, keepaliveTimeoutMs: 300 });
    const [r1, r2] = [await relay(quiet.port), await relay(alive.port)];
    await openPick(client(r1.port));
    await openPick(client(r2.port));
    expect(await quiet.inFlight()).toBe(1);
    expect(await alive.inFlight()).toBe(1);
    r1.silence();
    r2.silence();
    expect(await until(async () => (await alive.inFlight()) === 0, 5_000)).toBe(true);
    expect(alive.director.openPicks).toBe(0);
    // Without keepalive nothing notices: the Director keeps renewing the lease.
    expect(await quiet.inFlight()).toBe(1);
    expect(quiet.director.openPicks).toBe(1);
  }, 20_000);

  it('a stream with no message for the idle timeout is ended DEADLINE_EXCEEDED and released', async () => {
    const epp = await inProcessEpp(transport, NO_KEEPALIVE, 400);
    const ex = await openPick(client(epp.port));
    expect(await epp.inFlight()).toBe(1);
    const ended = await ex.done.then(
      () => 'ok',
      (e: { code?: number }) => e.code,
    );
    expect(ended).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(await until(async () => (await epp.inFlight()) === 0, 2_000)).toBe(true);
    expect(epp.director.openPicks).toBe(0);
  }, 20_000);

  it('a stream that keeps talking is not idle', async () => {
    const epp = await inProcessEpp(transport, NO_KEEPALIVE, 400);
    const ex = await openPick(client(epp.port));
    async function* slow() {
      for (let i = 0; i < 8; i++) {
        yield Buffer.from(`data: ${i}\n\n`);
        await sleep(150);
      }
    }
    for await (const _ of ex.streamResponseBody(slow())) void _;
    ex.end();
    await ex.done;
    expect(await epp.inFlight()).toBe(0);
  }, 20_000);
});

describe('streams cut at shutdown', () => {
  it('streams cut at the SIGTERM drain deadline have their releases in Redis before exit', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop());
    const epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'm0', port: 9 }]),
      args: ['--redis-url', redis.url, '--drain-timeout', '300ms', '--lease', '60s', '--log-level', 'warn'],
    });
    const raw = new Redis(redis.port, '127.0.0.1');
    cleanup.push(() => raw.disconnect());
    const inf = async () => {
      const h = await raw.hgetall('hermes:{default}:inf');
      return Object.values(h).reduce((a, v) => a + Number(v), 0);
    };
    const c = epp.connect({ deadlineMs: 20_000 });
    await Promise.all(Array.from({ length: 20 }, () => openPick(c)));
    expect(await inf()).toBe(20);
    epp.proc.child.kill('SIGTERM');
    expect(await epp.proc.exited).toBe(0);
    // Read at once: a 60 s lease would hide a lost release for a minute.
    expect(await inf()).toBe(0);
    expect(await raw.hlen('hermes:{default}:picks')).toBe(0);
  }, 30_000);
});
