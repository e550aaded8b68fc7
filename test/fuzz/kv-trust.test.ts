// Issue 17, defect 4 (and the KV items of 6): the cache-indexer's bound KV
// socket believed any sender. Here a spawned indexer with discovery (an
// endpoints file naming one pod at 127.0.0.1) and --kv-events-bind gets:
// the pod's own batches (connecting from 127.0.0.1), a forger on 127.0.0.2
// (also loopback, but not a pod) sending a batch and an AllBlocksCleared in
// the pod's name, 20,000 topics naming pods nobody discovered, a frame over
// the size bound and a batch of 100k blocks.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Publisher } from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeBatch, encodeSeq, podTopic, type EventBatch } from '../../src/kvcache/events.js';
import { tokenizeSimple } from '../../src/request/tokens.js';
import { tempDir } from '../helpers/epp.js';
import { freePort } from '../helpers/ports.js';
import { getText, metricSum, spawnFn, stopAllSpawned, type SpawnedFn } from '../helpers/spawn.js';

let indexer: SpawnedFn;
let url = '';
let kvPort = 0;
let pod = '';
const pubs: Publisher[] = [];

function stored(text: string, firstHash: bigint): Uint8Array {
  const tokens = [...tokenizeSimple(text)];
  const n = Math.floor(tokens.length / 4);
  const b: EventBatch = {
    ts: Date.now() / 1000,
    dataParallelRank: 0,
    events: [
      {
        type: 'BlockStored',
        blockHashes: Array.from({ length: n }, (_, i) => firstHash + BigInt(i)),
        parentBlockHash: null,
        tokenIds: tokens.slice(0, n * 4),
        blockSize: 4,
        loraId: null,
        medium: 'GPU',
        loraName: null,
      },
    ],
  };
  return encodeBatch(b);
}

const cleared = (): Uint8Array =>
  encodeBatch({ ts: Date.now() / 1000, dataParallelRank: 0, events: [{ type: 'AllBlocksCleared' }] });

function publisher(from?: string): Publisher {
  const p = new Publisher({ linger: 0 });
  // ZeroMQ's "source;destination" form picks the local address the connection comes from.
  p.connect(from ? `tcp://${from}:0;127.0.0.1:${kvPort}` : `tcp://127.0.0.1:${kvPort}`);
  pubs.push(p);
  return p;
}

async function hitRate(prompt: string): Promise<number> {
  const r = await fetch(`${url}/match_sort`, {
    method: 'POST',
    body: JSON.stringify({ model: 'm', prompt, candidates: [pod] }),
  });
  const body = (await r.json()) as { results: Array<{ hitRate: number }> };
  return body.results[0]!.hitRate;
}

async function pods(): Promise<Array<{ pod: string; blocks: number }>> {
  return (JSON.parse(await getText(`${url}/pods`)) as { pods: Array<{ pod: string; blocks: number }> }).pods;
}

const REAL = 'the real pod caches this prompt prefix!!';
const FORGED = 'a prompt the forger wants routed to pod';

beforeAll(async () => {
  const [hp, kp, podPort] = [await freePort(), await freePort(), await freePort()];
  kvPort = kp;
  pod = `127.0.0.1:${podPort}`;
  url = `http://127.0.0.1:${hp}`;
  const file = join(tempDir('hermes-kv-trust-'), 'endpoints.yaml');
  // kvEventsPort points at a closed port: the per-pod subscription stays idle, the bound socket is tested.
  writeFileSync(
    file,
    `endpoints:\n- name: pod0\n  address: 127.0.0.1\n  port: ${podPort}\n  kvEventsPort: ${await freePort()}\n`,
  );
  indexer = await spawnFn(
    'cache-indexer',
    [
      '--host',
      '127.0.0.1',
      '--port',
      String(hp),
      '--kv-events-bind',
      `tcp://127.0.0.1:${kp}`,
      '--endpoints-file',
      file,
      '--block-size',
      '4',
      '--log-level',
      'warn',
    ],
    { ready: { http: `${url}/healthz` } },
  );
});

afterAll(async () => {
  for (const p of pubs) p.close();
  await stopAllSpawned();
});

describe('KV events from senders that are not discovered pods', () => {
  it('credits the pod its own batches, and ignores a forged batch and AllBlocksCleared from 127.0.0.2', async () => {
    const real = publisher();
    let seq = 1;
    const end = Date.now() + 10_000;
    while ((await hitRate(REAL)) < 1) {
      if (Date.now() > end) throw new Error(`real batch never indexed:\n${indexer.output().slice(-2000)}`);
      await real.send([podTopic(pod, 'm'), encodeSeq(seq++), stored(REAL, 1000n)]);
      await new Promise((r) => setTimeout(r, 100));
    }
    const forger = publisher('127.0.0.2');
    // A connected forger would have had plenty of time for its batches to land.
    for (let i = 0; i < 20; i++) {
      await forger.send([podTopic(pod, 'm'), encodeSeq(seq++), stored(FORGED, 5000n + BigInt(i) * 100n)]);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await hitRate(FORGED)).toBe(0);
    for (let i = 0; i < 20; i++) {
      await forger.send([podTopic(pod, 'm'), encodeSeq(seq++), cleared()]);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(await hitRate(REAL)).toBe(1);
    // The real pod's next batch is still taken (its connection was never disturbed).
    await real.send([podTopic(pod, 'm'), encodeSeq(seq++), stored(FORGED, 9000n)]);
    await new Promise((r) => setTimeout(r, 300));
    expect(await hitRate(FORGED)).toBe(1);
    expect((await pods()).map((p) => p.pod)).toEqual([pod]);
  });

  it('drops topics naming pods nobody discovered: 20,000 of them leave /pods at one entry', async () => {
    const real = publisher();
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 20_000; i++) {
      await real.send([
        podTopic(`10.${i >> 16}.${(i >> 8) & 255}.${i & 255}:8000`, 'm'),
        encodeSeq(1),
        stored(FORGED, 1n),
      ]);
    }
    await new Promise((r) => setTimeout(r, 500));
    const list = await pods();
    expect(list.map((p) => p.pod)).toEqual([pod]);
    const metrics = await getText(`${url}/metrics`);
    expect(
      metricSum(metrics, 'cache_indexer_decode_errors_total', 'reason="undiscovered_pod"'),
    ).toBeGreaterThan(1000);
  });

  it('refuses a frame over 8 MiB and a batch of 100k blocks without growing or stalling', async () => {
    const real = publisher();
    await new Promise((r) => setTimeout(r, 300));
    const rss0 = indexer.rssBytes();
    const before = metricSum(await getText(`${url}/metrics`), 'cache_indexer_decode_errors_total') ?? 0;
    const big: EventBatch = {
      ts: 0,
      dataParallelRank: 0,
      events: [
        {
          type: 'BlockRemoved',
          blockHashes: Array.from({ length: 100_000 }, (_, i) => BigInt(i)),
          medium: null,
        },
      ],
    };
    await real.send([podTopic(pod, 'm'), encodeSeq(10_000), encodeBatch(big)]);
    await new Promise((r) => setTimeout(r, 300));
    const after = metricSum(await getText(`${url}/metrics`), 'cache_indexer_decode_errors_total') ?? 0;
    expect(after).toBeGreaterThan(before);
    // 300 MB frame: ZeroMQ refuses it past maxMessageSize and drops that connection.
    const huge = publisher();
    await new Promise((r) => setTimeout(r, 300));
    await huge.send([podTopic(pod, 'm'), encodeSeq(10_001), Buffer.alloc(300 * 1024 * 1024, 0x90)]);
    await new Promise((r) => setTimeout(r, 2_000));
    expect(indexer.alive()).toBe(true);
    expect(indexer.rssBytes() - rss0).toBeLessThan(100 * 1024 * 1024);
    expect(await hitRate(REAL)).toBe(1);
  }, 30_000);
});
