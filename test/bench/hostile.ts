// `npm run bench -- hostile [--names 20000] [--chunks 50000]`
//
// The figures of issue 17 after its fixes, against spawned processes on
// loopback (docs/reliability.md quotes them):
//  - EPP: 4 concurrent 14 MB bodies of nested arrays (BUFFERED): answer
//    time, peak RSS growth, and the worst latency of ordinary requests routed
//    meanwhile (the event-loop stall every client sees);
//  - EPP: a body sent as `--chunks` 1-byte chunks: RSS growth;
//  - EPP: `--names` distinct model names through ext_proc: /metrics size and
//    scrape time;
//  - EPP: 200 requests with 1 MiB x-request-ids: /state/decisions size;
//  - cache-indexer: 4 concurrent 14 MB nested /match_sort bodies: peak RSS
//    growth; /match_sort latency while 5 batches of 8,192 blocks (the largest
//    accepted) is applied.
//  - parsers in process (hostile-parse.ts): the time of one call on each
//    hostile input of the fuzz suites, and the worst call over a seeded
//    random sample (`--parse-only` runs just this section).
// Writes bench-results/hostile.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Publisher } from 'zeromq';
import type { ExtProcClient } from '../../src/gateway/extproc-client.js';
import { encodeBatch, encodeSeq, podTopic } from '../../src/kvcache/events.js';
import { endpointsYaml, startEpp } from '../helpers/epp.js';
import { fakeModel } from '../helpers/fake-model-server.js';
import { freePort } from '../helpers/ports.js';
import { parseTable, parseWorstCases } from './hostile-parse.js';
import { REPO_ROOT, rssOfPid, spawnFn, stopAllSpawned } from '../helpers/spawn.js';

const HEADERS: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/completions'],
];
const MB = 1024 * 1024;

function nested(prefix: string, depth: number): Buffer {
  return Buffer.concat([
    Buffer.from(prefix),
    Buffer.alloc(depth, '['),
    Buffer.alloc(depth, ']'),
    Buffer.from('}'),
  ]);
}

async function exchange(
  client: ExtProcClient,
  body: Buffer | Buffer[],
  mode: 'BUFFERED' | 'FULL_DUPLEX_STREAMED',
  headers = HEADERS,
): Promise<number> {
  const ex = client.open({ requestBodyMode: mode });
  const v = await ex.sendRequest({ headers, body });
  if (v.kind !== 'immediate') {
    await ex.sendResponseHeaders([[':status', '404']]);
    for await (const _ of ex.streamResponseBody([Buffer.from('{}')])) void _;
  }
  ex.end();
  await ex.done.catch(() => undefined);
  return v.kind === 'immediate' ? v.status : 200;
}

/** Runs `work` while sampling RSS every 10 ms and timing ordinary requests sent back to back. */
async function underAttack<T>(
  pid: number,
  work: () => Promise<T>,
  probe?: () => Promise<unknown>,
): Promise<{ result: T; ms: number; rssGrowthMb: number; probeMaxMs: number; probes: number }> {
  const rss0 = rssOfPid(pid);
  let peak = rss0;
  const timer = setInterval(() => (peak = Math.max(peak, rssOfPid(pid))), 10);
  let stop = false;
  let probeMaxMs = 0;
  let probes = 0;
  const prober = (async () => {
    while (probe && !stop) {
      const t = performance.now();
      await probe();
      probeMaxMs = Math.max(probeMaxMs, performance.now() - t);
      probes++;
    }
  })();
  const t0 = performance.now();
  const result = await work();
  const ms = performance.now() - t0;
  stop = true;
  await prober;
  clearInterval(timer);
  return { result, ms, rssGrowthMb: (Math.max(peak, rssOfPid(pid)) - rss0) / MB, probeMaxMs, probes };
}

const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;

export async function run(args: string[]): Promise<void> {
  const namesAt = args.indexOf('--names');
  const names = namesAt >= 0 ? Number(args[namesAt + 1]) : 20_000;
  const chunksAt = args.indexOf('--chunks');
  const oneByteChunks = chunksAt >= 0 ? Number(args[chunksAt + 1]) : 50_000;
  const out: Record<string, unknown> = {};
  const parse = parseWorstCases();
  out.parse = parse;
  process.stdout.write(`${parseTable(parse)}\n\n`);
  if (args.includes('--parse-only')) return write(out);
  const model = await fakeModel();
  try {
    const epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'm0', port: model.port }]),
      args: ['--log-level', 'warn'],
    });
    const pid = epp.proc.pid;
    const client = epp.client;
    const ordinary = Buffer.from('{"model":"m","prompt":"hello"}');
    await exchange(client, ordinary, 'BUFFERED');

    const body = nested('{"model":"m","prompt":"x","extra":', 7 * MB);
    const n = await underAttack(
      pid,
      () => Promise.all([1, 2, 3, 4].map(() => exchange(client, body, 'BUFFERED'))),
      () => exchange(epp.connect(), ordinary, 'BUFFERED'),
    );
    out.eppNested = {
      bodies: '4 x 14 MB nested arrays',
      statuses: n.result,
      answeredMs: round(n.ms),
      peakRssGrowthMb: round(n.rssGrowthMb),
      ordinaryRequestsMeanwhile: n.probes,
      worstOrdinaryMs: round(n.probeMaxMs),
    };

    const small = Buffer.from(`{"model":"m","prompt":"${'a'.repeat(oneByteChunks - 26)}"}`);
    const chunks = Array.from({ length: small.length }, (_, i) => small.subarray(i, i + 1));
    const slow = epp.connect({ deadlineMs: 300_000 });
    const c = await underAttack(pid, () => exchange(slow, chunks, 'FULL_DUPLEX_STREAMED'));
    out.eppOneByteChunks = {
      body: `${small.length} bytes in ${chunks.length} chunks`,
      status: c.result,
      ms: round(c.ms),
      peakRssGrowthMb: round(c.rssGrowthMb),
    };

    const t0 = performance.now();
    for (let i = 0; i < names; i += 100) {
      await Promise.all(
        Array.from({ length: Math.min(100, names - i) }, (_, j) =>
          exchange(
            client,
            Buffer.from(JSON.stringify({ model: `invented-${i + j}`, prompt: 'hi' })),
            'BUFFERED',
          ),
        ),
      );
    }
    const sendMs = performance.now() - t0;
    const s0 = performance.now();
    const text = await epp.metricsText();
    out.eppModelNames = {
      names,
      sendSeconds: round(sendMs / 1000),
      metricsBytes: text.length,
      scrapeMs: round(performance.now() - s0),
      rssMb: round(rssOfPid(pid) / MB),
    };

    const id = 'r'.repeat(MB);
    for (let i = 0; i < 200; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, (_, j) =>
          exchange(client, ordinary, 'BUFFERED', [...HEADERS, ['x-request-id', `${i + j}-${id}`]]),
        ),
      );
    }
    const d0 = performance.now();
    const decisions = await (await epp.adminGet('/state/decisions?limit=1000')).text();
    out.eppHugeRequestIds = {
      requests: '200 x 1 MiB x-request-id',
      decisionsBytes: decisions.length,
      decisionsMs: round(performance.now() - d0),
      rssMb: round(rssOfPid(pid) / MB),
    };

    // cache-indexer
    const [hp, kp, podPort] = [await freePort(), await freePort(), await freePort()];
    const url = `http://127.0.0.1:${hp}`;
    const dir = join(REPO_ROOT, 'bench-results');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'hostile-endpoints.yaml');
    writeFileSync(file, `endpoints:\n- name: pod0\n  address: 127.0.0.1\n  port: ${podPort}\n`);
    const indexer = await spawnFn(
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
        '--log-level',
        'warn',
      ],
      { ready: { http: `${url}/healthz` } },
    );
    const lookup = () =>
      fetch(`${url}/match_sort`, {
        method: 'POST',
        body: JSON.stringify({ model: 'm', prompt: 'x'.repeat(2000), candidates: [`127.0.0.1:${podPort}`] }),
      }).then((r) => r.text());
    const ib = nested('{"model":"m","candidates":["a:1"],"prompt":"x","x":', 7 * MB);
    const i1 = await underAttack(
      indexer.pid,
      () =>
        Promise.all(
          [1, 2, 3, 4].map(() =>
            fetch(`${url}/match_sort`, { method: 'POST', body: ib }).then((r) => r.status),
          ),
        ),
      lookup,
    );
    out.indexerNested = {
      bodies: '4 x 14 MB nested arrays',
      statuses: i1.result,
      answeredMs: round(i1.ms),
      peakRssGrowthMb: round(i1.rssGrowthMb),
      worstLookupMs: round(i1.probeMaxMs),
    };
    const pub = new Publisher({ linger: 0 });
    pub.connect(`tcp://127.0.0.1:${kp}`);
    await new Promise((r) => setTimeout(r, 300));
    const blocks = 8_192;
    const tokens = Array.from({ length: blocks * 16 }, (_, i) => i % 50_000);
    const batchOf = (k: number) =>
      encodeBatch({
        ts: 0,
        dataParallelRank: 0,
        events: [
          {
            type: 'BlockStored',
            blockHashes: Array.from({ length: blocks }, (_, i) => BigInt(k * blocks + i + 1)),
            parentBlockHash: null,
            tokenIds: tokens,
            blockSize: 16,
            loraId: null,
            medium: 'GPU',
            loraName: null,
          },
        ],
      });
    const batches = [0, 1, 2, 3, 4].map(batchOf);
    const i2 = await underAttack(
      indexer.pid,
      async () => {
        for (let k = 0; k < 5; k++) {
          await pub.send([podTopic(`127.0.0.1:${podPort}`, 'm'), encodeSeq(k + 1), batches[k]!]);
          await new Promise((r) => setTimeout(r, 400));
        }
      },
      lookup,
    );
    pub.close();
    out.indexerLargestBatch = {
      batch: `${blocks} blocks (${batches[0]!.length} bytes), 5 batches`,
      lookupsMeanwhile: i2.probes,
      worstLookupMs: round(i2.probeMaxMs),
    };
  } finally {
    await model.close();
    await stopAllSpawned();
  }
  write(out);
}

function write(out: Record<string, unknown>): void {
  const dir = join(REPO_ROOT, 'bench-results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'hostile.json'), JSON.stringify(out, null, 2));
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
}
