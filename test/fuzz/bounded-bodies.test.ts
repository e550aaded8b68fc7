// Issue 17, defect 1, against a spawned EPP: deeply nested bodies and
// bodies sent in tiny chunks. Before the fix, a 14 MB body of `[` cost the
// EPP ~800 MB of RSS and seconds of event loop while JSON.parse built the
// arrays, and the body limit counted bytes only, so a body in 1-byte chunks
// kept every chunk (~116 B each) until the end.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destinationOf, type ExtProcClient } from '../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp, type Epp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { rssOfPid, stopAllSpawned } from '../helpers/spawn.js';

const MAX_BODY = 16 * 1024 * 1024;
const HEADERS: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/completions'],
  ['content-type', 'application/json'],
];

let model: FakeModel;
let epp: Epp;
let client: ExtProcClient;

beforeAll(async () => {
  model = await fakeModel();
  epp = await startEpp({
    endpoints: endpointsYaml([{ name: 'm0', port: model.port }]),
    args: ['--max-request-body', String(MAX_BODY), '--log-level', 'warn'],
  });
  client = epp.client;
});

afterAll(async () => {
  await model?.close();
  await stopAllSpawned();
});

function splitAt(bytes: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out.filter((c) => c.length > 0);
}

async function send(
  body: Buffer | Buffer[],
  mode: 'BUFFERED' | 'FULL_DUPLEX_STREAMED',
  via: ExtProcClient = client,
): Promise<{ status: number; body: string } | { routed: string }> {
  const ex = via.open({ requestBodyMode: mode });
  const v = await ex.sendRequest({ headers: HEADERS, body });
  ex.end();
  await ex.done.catch(() => undefined);
  if (v.kind === 'immediate') return { status: v.status, body: v.body.toString() };
  return { routed: destinationOf(v)[0]! };
}

/** Peak RSS of `pid` while `work` runs, sampled every 10 ms. */
async function peakRssDuring<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = rssOfPid(pid);
  const timer = setInterval(() => (peak = Math.max(peak, rssOfPid(pid))), 10);
  try {
    const result = await work();
    return { result, peak: Math.max(peak, rssOfPid(pid)) };
  } finally {
    clearInterval(timer);
  }
}

describe('nesting and chunking bounds in the EPP', () => {
  it('answers 4 concurrent 14 MB nested bodies with 400 OpenAI errors, RSS +<150 MB, and keeps routing', async () => {
    const depth = 7 * 1024 * 1024;
    const nested = Buffer.concat([
      Buffer.from('{"model":"m","prompt":"x","extra":'),
      Buffer.alloc(depth, '['),
      Buffer.alloc(depth, ']'),
      Buffer.from('}'),
    ]);
    const rss0 = rssOfPid(epp.proc.pid);
    const { result, peak } = await peakRssDuring(epp.proc.pid, () =>
      Promise.all([
        send(nested, 'BUFFERED'),
        send(nested, 'BUFFERED'),
        send(splitAt(nested, [1000, 65_536, 2_000_000, 9_000_000]), 'FULL_DUPLEX_STREAMED'),
        send(splitAt(nested, [10, 4_000_000]), 'FULL_DUPLEX_STREAMED'),
      ]),
    );
    for (const r of result) {
      expect(r).toMatchObject({ status: 400 });
      const err = JSON.parse((r as { body: string }).body) as { error: { message: string; type: string } };
      expect(err.error.type).toBe('invalid_request_error');
      expect(err.error.message).toMatch(/nests deeper than 128 levels/);
    }
    // The bodies themselves are 4 x 14 MB, on the client's side and in grpc-js buffers.
    expect(peak - rss0).toBeLessThan(150 * 1024 * 1024);
    expect(await send(Buffer.from('{"model":"m","prompt":"hello"}'), 'BUFFERED')).toEqual({
      routed: model.id,
    });
  }, 60_000);

  it('nesting at or under the bound is routed, over it is a 400, however the body is split', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 100, max: 300 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.constantFrom('BUFFERED' as const, 'FULL_DUPLEX_STREAMED' as const),
        async (depth, cuts, mode) => {
          // The top-level object is level 1, so `extra` may nest 127 more.
          const body = Buffer.from(
            `{"model":"m","prompt":"[[[\\"","extra":${'['.repeat(depth)}"]]"${']'.repeat(depth)}}`,
          );
          const r = await send(mode === 'BUFFERED' ? body : splitAt(body, cuts), mode);
          if (depth + 1 <= 128) expect(r).toEqual({ routed: model.id });
          else expect(r).toMatchObject({ status: 400 });
        },
      ),
      { numRuns: 40, interruptAfterTimeLimit: 10_000, markInterruptAsFailure: false },
    );
  }, 30_000);

  it('a body in more chunks than the bound allows is refused with a 413', async () => {
    // A 256 KiB limit allows 4,096 chunks (one per 64 bytes); 5,000 1-byte chunks of a valid body.
    const small = await startEpp({
      name: 'epp-256k',
      endpoints: endpointsYaml([{ name: 'm0', port: model.port }]),
      args: ['--max-request-body', String(256 * 1024), '--log-level', 'warn'],
    });
    const body = Buffer.from(`{"model":"m","prompt":"${'a'.repeat(5_000)}"}`);
    const chunks = Array.from({ length: body.length }, (_, i) => body.subarray(i, i + 1));
    const r = await send(chunks, 'FULL_DUPLEX_STREAMED', small.client);
    expect(r).toMatchObject({ status: 413 });
    expect((r as { body: string }).body).toMatch(/more than 4096 chunks/);
    // The same body in ordinary chunks is fine.
    expect(await send(splitAt(body, [1_000, 2_000]), 'FULL_DUPLEX_STREAMED', small.client)).toEqual({
      routed: model.id,
    });
  }, 60_000);
});
