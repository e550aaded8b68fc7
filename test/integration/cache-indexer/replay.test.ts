// KV event replay with real processes: mock-vllm publishes KV events and
// serves replays (--kv-events-replay-port); cache-indexers follow it, some
// through a ZMQ forwarder this test controls, which drops every message for
// a while (a sequence gap). Compared with a reference indexer that never
// lost anything:
//  - with a replay endpoint (kvEventsReplayPort) the gap is filled: same hit
//    rates, no gap counted, pod not incomplete;
//  - an indexer that joins late is filled from the producer's buffer;
//  - without a replay endpoint, with a dead one (timeout), or with a
//    producer buffer too small to reach back (partial), the gap is counted
//    and the pod marked incomplete, as before replay existed.
import { eventually } from '../../helpers/wait.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Publisher, Subscriber } from 'zeromq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';

const MODEL = 'replay-model';
const BLOCK_BYTES = 64; // 16 tokens x 4 bytes (the simple tokenizer)
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'kv-replay-'));
const children: ChildProcess[] = [];
const forwarders: Forwarder[] = [];

interface Proc {
  url: string;
  output: () => string;
}

/** `node bin/hermes-router.js <args>`, ready once `health` answers 200. */
async function spawnFn(args: string[], port: number, health: string): Promise<Proc> {
  const child = spawn(process.execPath, [join(repoRoot, 'bin', 'hermes-router.js'), ...args], {
    cwd: repoRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-200_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const end = Date.now() + 15_000;
  for (;;) {
    const ok = await fetch(url + health, { signal: AbortSignal.timeout(1_000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { url, output: () => out };
    if (child.exitCode !== null || Date.now() > end)
      throw new Error(`${args.slice(0, 3).join(' ')} did not come up:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** SUB from a producer, PUB to consumers; drops everything while `dropping`. */
class Forwarder {
  readonly sub = new Subscriber({ linger: 0 });
  readonly pub = new Publisher({ linger: 0 });
  dropping = false;
  dropped = 0;
  forwarded = 0;

  async start(source: string, port: number): Promise<void> {
    this.sub.subscribe();
    this.sub.connect(source);
    await this.pub.bind(`tcp://127.0.0.1:${port}`);
    void this.pump();
  }

  private async pump(): Promise<void> {
    try {
      for await (const frames of this.sub) {
        if (this.dropping) this.dropped++;
        else {
          await this.pub.send(frames);
          this.forwarded++;
        }
      }
    } catch {
      // closed at the end of the test
    }
  }

  close(): void {
    this.sub.close();
    this.pub.close();
  }
}

interface Pod {
  proc: Proc;
  id: string;
  kvPort: number;
  replayPort: number;
}

async function startPod(extra: string[] = []): Promise<Pod> {
  const [port, kvPort, replayPort] = await Promise.all([freePort(), freePort(), freePort()]);
  const proc = await spawnFn(
    [
      'mock-vllm',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--model',
      MODEL,
      '--time-scale',
      '200',
      '--kv-events-port',
      String(kvPort),
      '--kv-events-replay-port',
      String(replayPort),
      '--log-level',
      'warn',
      ...extra,
    ],
    port,
    '/health',
  );
  return { proc, id: `127.0.0.1:${port}`, kvPort, replayPort };
}

interface EndpointEntry {
  pod: Pod;
  kvPort: number;
  replayPort?: number;
}

async function startIndexer(name: string, entries: EndpointEntry[], extra: string[] = []): Promise<Proc> {
  const port = await freePort();
  const file = join(dir, `${name}.yaml`);
  const lines = entries.map(
    (e) =>
      `- {address: 127.0.0.1, port: ${e.pod.id.split(':')[1]}, kvEventsPort: ${e.kvPort}` +
      (e.replayPort ? `, kvEventsReplayPort: ${e.replayPort}}` : '}'),
  );
  writeFileSync(file, `endpoints:\n${lines.join('\n')}\n`);
  return spawnFn(
    [
      'cache-indexer',
      '--port',
      String(port),
      '--host',
      '127.0.0.1',
      '--endpoints-file',
      file,
      '--log-level',
      'info',
      ...extra,
    ],
    port,
    '/healthz',
  );
}

async function complete(pod: Pod, prompt: string): Promise<void> {
  const r = await fetch(`${pod.proc.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt, max_tokens: 1 }),
  });
  expect(r.status).toBe(200);
  await r.text();
}

async function hitRate(indexer: Proc, pod: Pod, prompt: string): Promise<number> {
  const r = await fetch(`${indexer.url}/match_sort`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: MODEL, prompt, candidates: [pod.id] }),
  });
  expect(r.status).toBe(200);
  return ((await r.json()) as { results: Array<{ hitRate: number }> }).results[0]!.hitRate;
}

async function hitRates(indexer: Proc, pod: Pod, prompts: string[]): Promise<number[]> {
  return Promise.all(prompts.map((p) => hitRate(indexer, pod, p)));
}

interface PodStatus {
  pod: string;
  batches: number;
  gaps: number;
  incomplete: boolean;
}

async function podStatus(indexer: Proc, pod: Pod): Promise<PodStatus | undefined> {
  const body = (await (await fetch(`${indexer.url}/pods`)).json()) as { pods: PodStatus[] };
  return body.pods.find((p) => p.pod === pod.id);
}

async function metric(indexer: Proc, series: string): Promise<number> {
  const text = await (await fetch(`${indexer.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** ZMQ drops what is sent before a subscription is up: send throwaway prompts until every indexer saw the pod. */
async function warmUp(indexers: Proc[], pod: Pod): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const seen = await Promise.all(
      indexers.map(async (ix) => ((await podStatus(ix, pod))?.batches ?? 0) > 0),
    );
    if (seen.every(Boolean)) return;
    await complete(pod, blocksOf(`warm-up ${i} ${Math.random()} `, 2));
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the indexers never saw events from ${pod.id}`);
}

/** Exactly `blocks` full blocks of text starting with `tag` (distinct first blocks). */
function blocksOf(tag: string, blocks: number): string {
  return tag.repeat(Math.ceil((blocks * BLOCK_BYTES) / tag.length)).slice(0, blocks * BLOCK_BYTES);
}

const prompt = (name: string) => blocksOf(`${name}: a prompt of its own, `, 4);

afterAll(async () => {
  for (const f of forwarders) f.close();
  await Promise.all(
    children.map(
      (c) =>
        new Promise<void>((resolve) => {
          if (c.exitCode !== null || c.signalCode !== null) return resolve();
          c.once('exit', () => resolve());
          c.kill('SIGKILL');
        }),
    ),
  );
  rmSync(dir, { recursive: true, force: true });
});

describe('cache-indexer KV event replay after missed batches', () => {
  let a: Pod; // buffers 10,000 batches
  let b: Pod; // buffers 2 batches: a longer gap cannot be replayed
  let fwdA: Forwarder;
  let fwdB: Forwarder;
  let reference: Proc; // follows a directly, never loses anything
  let withReplay: Proc; // through the forwarders, replay endpoints declared
  let noReplay: Proc; // through the forwarder, no replay endpoint
  let deadReplay: Proc; // through the forwarder, replay endpoint that never answers
  const before = ['before-1', 'before-2'].map(prompt);
  const missed = ['missed-1', 'missed-2', 'missed-3'].map(prompt);
  const after = ['after-1'].map(prompt);
  const missedB = ['b-missed-1', 'b-missed-2', 'b-missed-3', 'b-missed-4'].map(prompt);
  const afterB = ['b-after-1'].map(prompt);

  beforeAll(async () => {
    [a, b] = await Promise.all([startPod(), startPod(['--kv-events-buffer', '2'])]);
    const [fa, fb, deadPort] = await Promise.all([freePort(), freePort(), freePort()]);
    fwdA = new Forwarder();
    fwdB = new Forwarder();
    forwarders.push(fwdA, fwdB);
    await fwdA.start(`tcp://127.0.0.1:${a.kvPort}`, fa);
    await fwdB.start(`tcp://127.0.0.1:${b.kvPort}`, fb);
    [reference, withReplay, noReplay, deadReplay] = await Promise.all([
      startIndexer('reference', [{ pod: a, kvPort: a.kvPort }]),
      startIndexer('with-replay', [
        { pod: a, kvPort: fa, replayPort: a.replayPort },
        { pod: b, kvPort: fb, replayPort: b.replayPort },
      ]),
      startIndexer('no-replay', [{ pod: a, kvPort: fa }]),
      startIndexer(
        'dead-replay',
        [{ pod: a, kvPort: fa, replayPort: deadPort }],
        ['--kv-events-replay-timeout', '300ms'],
      ),
    ]);
    await warmUp([reference, withReplay, noReplay, deadReplay], a);
    await warmUp([withReplay], b);
  });

  it('fills a sequence gap from the replay socket: same hit rates as an indexer that lost nothing', async () => {
    for (const p of before) await complete(a, p);
    const ones = (n: number) => new Array<number>(n).fill(1);
    expect(
      await eventually(
        async () => {
          const r = await hitRates(withReplay, a, before);
          return r.every((x) => x === 1) && r;
        },
        8_000,
        'the index to reach the expected state',
      ),
    ).toEqual(ones(before.length));

    const okBefore = await metric(withReplay, 'cache_indexer_replays_total{result="ok"}');
    const replayedBefore = await metric(withReplay, 'cache_indexer_replayed_batches_total');
    // Lose every message for a while.
    fwdA.dropping = true;
    fwdB.dropping = true;
    for (const p of missed) await complete(a, p);
    for (const p of missedB) await complete(b, p);
    // The reference saw them, so they were published; the forwarder dropped them.
    expect(
      await eventually(
        async () => {
          const r = await hitRates(reference, a, missed);
          return r.every((x) => x === 1) && r;
        },
        8_000,
        'the index to reach the expected state',
      ),
    ).toEqual(ones(missed.length));
    await new Promise((r) => setTimeout(r, 200));
    expect(fwdA.dropped).toBeGreaterThanOrEqual(missed.length);
    expect(fwdB.dropped).toBeGreaterThanOrEqual(missedB.length);
    fwdA.dropping = false;
    fwdB.dropping = false;

    // The next batch shows the gap.
    for (const p of after) await complete(a, p);
    for (const p of afterB) await complete(b, p);
    const all = [...before, ...missed, ...after];
    const expected = await eventually(
      async () => {
        const r = await hitRates(reference, a, all);
        return r.every((x) => x === 1) && r;
      },
      8_000,
      'the index to reach the expected state',
    );
    expect(expected).toEqual(ones(all.length));
    expect(
      await eventually(
        async () => {
          const r = await hitRates(withReplay, a, all);
          return r.every((x) => x === 1) && r;
        },
        8_000,
        'the index to reach the expected state',
      ),
    ).toEqual(expected);
    const status = await podStatus(withReplay, a);
    expect(status).toMatchObject({ gaps: 0, incomplete: false });
    expect(await metric(withReplay, 'cache_indexer_replays_total{result="ok"}')).toBe(okBefore + 1);
    expect(await metric(withReplay, 'cache_indexer_replayed_batches_total')).toBeGreaterThanOrEqual(
      replayedBefore + missed.length,
    );
    expect(withReplay.output()).toContain('KV event replay applied');
  });

  it('without a replay endpoint the gap is counted and the pod marked incomplete (as before)', async () => {
    const status = await eventually(
      async () => {
        const s = await podStatus(noReplay, a);
        return s?.incomplete === true && s;
      },
      8_000,
      'the index to reach the expected state',
    );
    expect(status).toMatchObject({ incomplete: true });
    expect(status!.gaps).toBeGreaterThanOrEqual(1);
    expect(await hitRates(noReplay, a, missed)).toEqual([0, 0, 0]);
    expect(
      await eventually(
        async () => {
          const r = await hitRates(noReplay, a, after);
          return r[0] === 1 && r;
        },
        8_000,
        'the index to reach the expected state',
      ),
    ).toEqual([1]);
    expect(
      await metric(noReplay, 'cache_indexer_replays_total{result="unavailable"}'),
    ).toBeGreaterThanOrEqual(1);
    expect(await metric(noReplay, 'cache_indexer_missed_batches_total')).toBeGreaterThanOrEqual(
      missed.length,
    );
  });

  it('a replay endpoint that never answers times out and falls back the same way, without holding events', async () => {
    const status = await eventually(
      async () => {
        const s = await podStatus(deadReplay, a);
        return s?.incomplete === true && s;
      },
      8_000,
      'the index to reach the expected state',
    );
    expect(status).toMatchObject({ incomplete: true });
    expect(await metric(deadReplay, 'cache_indexer_replays_total{result="failed"}')).toBeGreaterThanOrEqual(
      1,
    );
    expect(await hitRates(deadReplay, a, missed)).toEqual([0, 0, 0]);
    // The live batches held during the attempt were applied afterwards.
    expect(
      await eventually(
        async () => {
          const r = await hitRates(deadReplay, a, after);
          return r[0] === 1 && r;
        },
        8_000,
        'the index to reach the expected state',
      ),
    ).toEqual([1]);
    expect(deadReplay.output()).toContain('KV event replay failed');
  });

  it('a producer buffer too small to reach back gives a partial replay: pod incomplete, newest batches kept', async () => {
    const status = await eventually(
      async () => {
        const s = await podStatus(withReplay, b);
        return s?.incomplete === true && s;
      },
      8_000,
      'the index to reach the expected state',
    );
    expect(status).toMatchObject({ incomplete: true });
    expect(await metric(withReplay, 'cache_indexer_replays_total{result="partial"}')).toBeGreaterThanOrEqual(
      1,
    );
    // The oldest missed prompts are gone for good; the batch after the gap is indexed.
    expect((await hitRates(withReplay, b, missedB))[0]).toBe(0);
    expect(
      await eventually(
        async () => {
          const r = await hitRates(withReplay, b, afterB);
          return r[0] === 1 && r;
        },
        8_000,
        'the index to reach the expected state',
      ),
    ).toEqual([1]);
    // The partial replay was the one asked at the gap (not on first contact, which asks from 0).
    const gapReplay = withReplay
      .output()
      .split('\n')
      .filter((l) => l.includes('does not reach back far enough') && l.includes(b.id))
      .map((l) => JSON.parse(l) as { from: string; batches: number });
    expect(gapReplay.length).toBe(1);
    expect(Number(gapReplay[0]!.from)).toBeGreaterThan(0);
    expect(gapReplay[0]!.batches).toBe(2);
  });

  it('an indexer that joins late is filled from the buffered history; with replay off it is not', async () => {
    const history = [...before, ...missed, ...after];
    const [late, lateOff] = await Promise.all([
      startIndexer('late', [{ pod: a, kvPort: a.kvPort, replayPort: a.replayPort }]),
      startIndexer(
        'late-off',
        [{ pod: a, kvPort: a.kvPort, replayPort: a.replayPort }],
        ['--kv-events-replay-timeout', '0'],
      ),
    ]);
    await warmUp([late, lateOff], a);
    const expected = await hitRates(reference, a, history);
    expect(expected.every((x) => x === 1)).toBe(true);
    expect(
      await eventually(
        async () => {
          const r = await hitRates(late, a, history);
          return r.every((x) => x === 1) && r;
        },
        8_000,
        'the index to reach the expected state',
      ),
    ).toEqual(expected);
    expect(await podStatus(late, a)).toMatchObject({ gaps: 0, incomplete: false });
    expect(await metric(late, 'cache_indexer_replays_total{result="ok"}')).toBeGreaterThanOrEqual(1);
    expect(late.output()).toContain('joined mid-stream');
    expect(await hitRates(lateOff, a, history)).toEqual(history.map(() => 0));
  });
});
