// mock-vllm's P/D roles (vLLM's kv_transfer_params contract) and its KV
// events over ZMQ (PUB bind, replay ROUTER, connect mode with a pod topic).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dealer, Subscriber } from 'zeromq';
import { freePort } from '../../helpers/ports.js';
import { chainBlockHashes } from '../../../src/kvcache/block-hash.js';
import {
  decodeBatch,
  decodeSeq,
  encodeSeq,
  type BlockStored,
  type DecodedBatch,
} from '../../../src/kvcache/events.js';
import { tokenizeSimple } from '../../../src/request/tokens.js';
import { postJson, sseEvents, spawnFunction, type Spawned } from './spawn.js';

const MODEL = 'pd-model';
const started: Spawned[] = [];

async function startMock(extra: string[]): Promise<Spawned & { port: number }> {
  const port = await freePort();
  const s = await spawnFunction(
    ['mock-vllm', '--port', String(port), '--model', MODEL, '--time-scale', '100', ...extra],
    port,
    '/health',
  );
  started.push(s);
  return Object.assign(s, { port });
}

afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

const PREFILL_PARAMS = {
  do_remote_decode: true,
  do_remote_prefill: false,
  remote_engine_id: null,
  remote_block_ids: null,
  remote_host: null,
  remote_port: null,
};

describe('mock-vllm P/D roles', () => {
  let prefill: Spawned & { port: number };
  let decode: Spawned & { port: number };
  beforeAll(async () => {
    [prefill, decode] = await Promise.all([
      startMock(['--role', 'prefill']),
      startMock(['--role', 'decode']),
    ]);
  });

  it('runs the proxy flow: prefill answers kv_transfer_params, decode accepts them', async () => {
    const prompt = 'Disaggregated serving splits prefill from decode. '.repeat(8); // 400 bytes = 100 tokens
    const p = await postJson(`${prefill.url}/v1/completions`, {
      model: MODEL,
      prompt,
      max_tokens: 1,
      stream: false,
      kv_transfer_params: PREFILL_PARAMS,
    });
    expect(p.status).toBe(200);
    expect(p.headers.get('x-mock-vllm-kind')).toBe('prefill');
    const kv = p.json.kv_transfer_params as Record<string, unknown>;
    expect(kv).toMatchObject({
      do_remote_prefill: true,
      do_remote_decode: false,
      remote_host: '127.0.0.1',
      remote_port: prefill.port,
    });
    expect(typeof kv.remote_engine_id).toBe('string');
    expect(kv.remote_block_ids).toHaveLength(6); // full prompt blocks: floor(100 / 16)
    const d = await sseEvents(`${decode.url}/v1/completions`, {
      model: MODEL,
      prompt,
      max_tokens: 3,
      stream: true,
      kv_transfer_params: kv,
    });
    expect(d.status).toBe(200);
    expect(d.headers.get('x-mock-vllm-kind')).toBe('decode');
    expect(d.events.at(-1)).toBe('[DONE]');
    const metrics = await (await fetch(`${decode.url}/metrics`)).text();
    expect(metrics).toMatch(/mock_vllm_requests_total\{model_name="pd-model",kind="decode"\} 1/);
    // The transferred prompt was not computed on the decode pod.
    expect(metrics).toMatch(/^vllm:prompt_tokens_total\{[^}]*\} 0$/m);
  });

  it('refuses the other role and malformed params with 400', async () => {
    const wrongOnDecode = await postJson(`${decode.url}/v1/completions`, {
      model: MODEL,
      prompt: 'x',
      kv_transfer_params: PREFILL_PARAMS,
    });
    expect(wrongOnDecode.status).toBe(400);
    const remote = {
      do_remote_prefill: true,
      remote_engine_id: 'e',
      remote_block_ids: [1],
      remote_host: '127.0.0.1',
      remote_port: 1,
    };
    const wrongOnPrefill = await postJson(`${prefill.url}/v1/completions`, {
      model: MODEL,
      prompt: 'x',
      kv_transfer_params: remote,
    });
    expect(wrongOnPrefill.status).toBe(400);
    const missingHost = await postJson(`${decode.url}/v1/completions`, {
      model: MODEL,
      prompt: 'x',
      kv_transfer_params: { ...remote, remote_host: undefined },
    });
    expect(missingHost.status).toBe(400);
    expect((missingHost.json.error as { message: string }).message).toContain('remote_host');
    const notObject = await postJson(`${decode.url}/v1/completions`, {
      model: MODEL,
      prompt: 'x',
      kv_transfer_params: 'yes',
    });
    expect(notObject.status).toBe(400);
    // A plain request is served by either role, as vLLM does.
    expect(
      (await postJson(`${prefill.url}/v1/completions`, { model: MODEL, prompt: 'x', max_tokens: 1 })).status,
    ).toBe(200);
  });
});

interface Msg {
  topic: string;
  seq: bigint;
  batch: DecodedBatch;
}

/** Collects a SUB socket's messages so tests can wait for the next one. */
class Sink {
  readonly msgs: Msg[] = [];
  private read = 0;
  private wake: (() => void) | undefined;
  constructor(readonly sub: Subscriber) {
    void (async () => {
      try {
        for await (const [topic, seq, payload] of sub) {
          this.msgs.push({ topic: topic!.toString(), seq: decodeSeq(seq!), batch: decodeBatch(payload!) });
          this.wake?.();
        }
      } catch {
        // closed
      }
    })();
  }
  async next(timeoutMs = 5_000): Promise<Msg> {
    const end = Date.now() + timeoutMs;
    while (this.read >= this.msgs.length) {
      if (Date.now() > end) throw new Error('no KV event batch arrived');
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 50);
      });
    }
    return this.msgs[this.read++]!;
  }
  /** Sends throwaway prompts until a batch arrives (ZMQ drops what is sent before a subscriber joins). */
  async warmUp(url: string): Promise<void> {
    for (let i = 0; i < 50 && this.msgs.length === 0; i++) {
      await postJson(`${url}/v1/completions`, {
        model: MODEL,
        prompt: `warm-up ${i} `.repeat(8),
        max_tokens: 1,
      });
      await new Promise((r) => setTimeout(r, 100));
    }
    if (this.msgs.length === 0) throw new Error('no KV events arrived');
    await new Promise((r) => setTimeout(r, 100));
    this.read = this.msgs.length;
  }
}

describe('mock-vllm KV events', () => {
  it("publishes BlockStored with this project's chained block hashes, BlockRemoved on eviction, and replays", async () => {
    const kvPort = await freePort();
    const replayPort = await freePort();
    // 12 blocks: two 8-block prompts cannot both stay cached.
    const mock = await startMock([
      '--kv-events-port',
      String(kvPort),
      '--kv-events-replay-port',
      String(replayPort),
      '--kv-cache-blocks',
      '12',
    ]);
    const sub = new Subscriber({ linger: 0 });
    sub.subscribe();
    sub.connect(`tcp://127.0.0.1:${kvPort}`);
    const sink = new Sink(sub);
    try {
      await sink.warmUp(mock.url);
      const promptA = 'alpha '.repeat(22); // 132 bytes = 33 tokens = 2 full blocks
      await postJson(`${mock.url}/v1/completions`, { model: MODEL, prompt: promptA, max_tokens: 1 });
      const a = await sink.next();
      expect(a.topic).toBe(`kv@127.0.0.1:${mock.port}@${MODEL}`);
      expect(a.batch.encoding).toBe('map');
      const stored = a.batch.events.find((e) => e.type === 'BlockStored') as BlockStored;
      const tokens = tokenizeSimple(promptA);
      expect(stored.tokenIds).toEqual(Array.from(tokens.subarray(0, 32)));
      expect(stored.blockSize).toBe(16);
      expect(stored.parentBlockHash).toBeNull();
      expect(stored.blockHashes.map((h) => Buffer.from(h as Uint8Array).toString('hex'))).toEqual(
        chainBlockHashes(tokens, 16).map((h) => h.toString('hex')),
      );
      // A prompt of 10 new blocks (+1 output block) forces evictions of earlier blocks.
      await postJson(`${mock.url}/v1/completions`, {
        model: MODEL,
        prompt: 'omega '.repeat(108),
        max_tokens: 1,
      });
      const b = await sink.next();
      expect(b.seq).toBe(a.seq + 1n);
      const removed = b.batch.events.filter((e) => e.type === 'BlockRemoved');
      expect(removed.length).toBeGreaterThan(0);

      // Replay from a's sequence: a's and b's batches, then the end marker (-1).
      const dealer = new Dealer({ linger: 0 });
      dealer.connect(`tcp://127.0.0.1:${replayPort}`);
      await dealer.send([Buffer.alloc(0), encodeSeq(a.seq)]);
      const seqs: bigint[] = [];
      for (;;) {
        const frames = await dealer.receive();
        const seq = decodeSeq(frames[1]!);
        if (seq === -1n) break;
        seqs.push(seq);
        decodeBatch(frames[2]!);
      }
      dealer.close();
      expect(seqs).toEqual([a.seq, b.seq]);
    } finally {
      sub.close();
    }
  });

  it('connects to a bound consumer with the pod topic and the older array encoding', async () => {
    const sinkPort = await freePort();
    const sub = new Subscriber({ linger: 0 });
    sub.subscribe();
    await sub.bind(`tcp://127.0.0.1:${sinkPort}`);
    const mock = await startMock([
      '--kv-events-connect',
      `tcp://127.0.0.1:${sinkPort}`,
      '--kv-events-encoding',
      'array',
    ]);
    const sink = new Sink(sub);
    try {
      await sink.warmUp(mock.url);
      await postJson(`${mock.url}/v1/completions`, {
        model: MODEL,
        prompt: 'connect mode! '.repeat(10),
        max_tokens: 1,
      });
      const got = await sink.next();
      expect(got.topic).toBe(`kv@127.0.0.1:${mock.port}@${MODEL}`);
      expect(got.batch.encoding).toBe('array');
      expect(got.batch.events[0]!.type).toBe('BlockStored');
      const reset = await fetch(`${mock.url}/reset_prefix_cache`, { method: 'POST' });
      expect(reset.status).toBe(200);
      const cleared = await sink.next();
      expect(cleared.batch.events.map((e) => e.type)).toEqual(['AllBlocksCleared']);
    } finally {
      sub.close();
    }
  });
});
