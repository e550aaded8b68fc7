// `npm run bench -- extproc-stream [--sizes 2048,220000] [--seconds 2 | --exchanges N [--warmup N]]
//    [--metrics] [--service] [--alloc N]`
//
// The EPP's own CPU per ext_proc exchange, without gRPC, HTTP/2 or other
// processes: the ProcessingRequest messages Envoy sends for one exchange
// (FULL_DUPLEX_STREAMED, 16 KiB body chunks, as the extproc benchmark sends)
// are decoded from protobuf bytes with the service's own codec (as grpc-js
// does), fed to a ProcessStream over the GIE default profile (8 endpoints,
// in-memory store, no scraping; with --metrics the EPP's Prometheus
// observer, else none), and every reply is
// encoded back to bytes. The same messages decoded and the same replies
// encoded without the stream give the codec's share. One process, CPU from
// process.cpuUsage, so the figure is this process's work alone even on a
// loaded machine (cache and frequency effects of other load remain).
// --service drives each exchange through ExtProcService.process (the
// per-call bookkeeping of server.ts: the stream's listeners, its count, the
// idle timeout at its default) over a stand-in call that behaves as the lean
// transport's LeanCall does (its end() cancels, then closes the call).
// --alloc N (needs node --expose-gc, and a new space big enough that N
// exchanges fit without a scavenge, e.g. --max-semi-space-size=256): after
// the warm-up, bytes allocated per exchange, from the heap's used size and
// the ArrayBuffer total across N exchanges with no collection in between
// (a run that saw one is reported as such, not as a figure).
import { DEFAULT_CONFIG_TEXT, loadConfigText } from '../../src/config/endpoint-picker-config.js';
import { Director } from '../../src/director/director.js';
import { toHeaderMap, type ProcessingRequest, type ProcessingResponse } from '../../src/extproc/messages.js';
import { EventEmitter } from 'node:events';
import { PerformanceObserver } from 'node:perf_hooks';
import { eppServiceDefinition, processCodec } from '../../src/extproc/proto.js';
import { ExtProcService, STREAM_IDLE_TIMEOUT_DEFAULT_MS } from '../../src/extproc/server.js';
import { ProcessStream } from '../../src/extproc/stream.js';
import { silentLogger } from '../../src/observability/logger.js';
import { EppMetrics } from '../../src/observability/metrics.js';
import { builtinRegistry } from '../../src/plugins/index.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';
import { chatBody, chunks } from './extproc.js';

const ANSWER = Buffer.from(
  '{"object":"chat.completion","choices":[],"usage":{"prompt_tokens":500,"completion_tokens":16}}',
);

function exchangeMessages(body: Buffer): Buffer[] {
  const codec = processCodec();
  const msgs: ProcessingRequest[] = [
    {
      request_headers: {
        headers: toHeaderMap([
          [':method', 'POST'],
          [':path', '/v1/chat/completions'],
          [':authority', 'bench'],
          ['content-type', 'application/json'],
        ]),
        end_of_stream: false,
      },
      protocol_config: {
        request_body_mode: 'FULL_DUPLEX_STREAMED',
        response_body_mode: 'FULL_DUPLEX_STREAMED',
      },
    },
  ];
  const cs = chunks(body);
  cs.forEach((c, i) => msgs.push({ request_body: { body: c, end_of_stream: i === cs.length - 1 } }));
  msgs.push({
    response_headers: {
      headers: toHeaderMap([
        [':status', '200'],
        ['content-type', 'application/json'],
      ]),
    },
  });
  msgs.push({ response_body: { body: ANSWER, end_of_stream: true } });
  return msgs.map((m) => codec.encodeRequest(m));
}

async function director(store: MemoryStateStore): Promise<Director> {
  await store.replaceEndpoints(
    Array.from({ length: 8 }, (_, i) => ({
      id: `10.0.0.${i + 1}:8000`,
      name: `vllm-${i}`,
      address: `10.0.0.${i + 1}`,
      port: 8000,
      labels: {},
    })),
  );
  return new Director({
    store,
    profile: loadConfigText(DEFAULT_CONFIG_TEXT, 'bench', builtinRegistry()).profile,
  });
}

const cpuMsNow = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** A Process call as the lean transport hands it over: end() sends the status, then cancels and closes. */
class BenchCall extends EventEmitter {
  constructor(
    private readonly out: ProcessingResponse[],
    private readonly written: Array<(() => void) | undefined>,
    private readonly ended: () => void,
  ) {
    super();
  }

  write(m: ProcessingResponse, w?: () => void): void {
    this.out.push(m);
    this.written.push(w);
  }

  end(): void {
    this.emit('cancelled');
    this.emit('close');
    this.ended();
  }
}

export async function run(args: string[]): Promise<void> {
  const arg = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const sizes = (arg('--sizes') ?? '2048,32768,220000,1000000').split(',').map(Number);
  const seconds = Number(arg('--seconds') ?? 2);
  // A fixed count instead (rounded up to a batch): for instruction counts
  // under valgrind, whose difference between two counts is load-independent.
  const exchanges_ = Number(arg('--exchanges') ?? 0);
  const warmup = Number(arg('--warmup') ?? 0);
  const allocN = Number(arg('--alloc') ?? 0);
  const codec = processCodec();
  const serialize = eppServiceDefinition().Process!.responseSerialize as (m: ProcessingResponse) => Buffer;
  const store = new MemoryStateStore();
  const d = await director(store);
  const observer = args.includes('--metrics')
    ? new EppMetrics({ poolName: 'bench', store, stalenessMs: 1000 }).observer()
    : {};
  const opts = {
    director: d,
    logger: silentLogger(),
    destinationHeader: 'x-gateway-destination-endpoint',
    metadataNamespace: 'envoy.lb',
    maxBodyBytes: 16 * 1024 * 1024,
    defaultRequestBodyMode: 'FULL_DUPLEX_STREAMED' as const,
    defaultResponseBodyMode: 'FULL_DUPLEX_STREAMED' as const,
    observer,
  };
  const service = args.includes('--service')
    ? new ExtProcService({
        ...opts,
        renewIntervalMs: 10_000,
        streamIdleTimeoutMs: STREAM_IDLE_TIMEOUT_DEFAULT_MS,
      })
    : undefined;
  if (allocN)
    process.stdout.write(
      '| body | exchanges | JS heap bytes/exchange | ArrayBuffer bytes/exchange |\n| ---- | --------- | ---------------------- | -------------------------- |\n',
    );
  else
    process.stdout.write(
      '| body | exchanges | stream + codec us/req | codec alone us/req | EPP logic us/req | fastest tenth of batches, wall us/req |\n',
    );
  if (!allocN)
    process.stdout.write(
      '| ---- | --------- | --------------------- | ------------------ | ---------------- | ------------------------------------- |\n',
    );
  for (const size of sizes) {
    const exchanges = Array.from({ length: 16 }, (_, i) => exchangeMessages(chatBody(size, i)));
    let replies: ProcessingResponse[] = [];
    const one = async (k: number) => {
      const out: ProcessingResponse[] = [];
      const written: Array<(() => void) | undefined> = [];
      if (service) {
        await new Promise<void>((resolve) => {
          const call = new BenchCall(out, written, resolve);
          service.process(call);
          for (const bytes of exchanges[k % exchanges.length]!)
            call.emit('data', codec.decodeRequest(bytes) as ProcessingRequest);
          call.emit('end');
        });
        for (let i = 0; i < out.length; i++) {
          const bytes = serialize(out[i]!);
          Buffer.allocUnsafe(bytes.length + 5).set(bytes, 5);
          written[i]?.();
        }
        replies = out;
        return;
      }
      const s = new ProcessStream(
        {
          write: (m, w) => {
            out.push(m);
            written.push(w);
          },
          end: () => undefined,
        },
        opts,
      );
      for (const bytes of exchanges[k % exchanges.length]!)
        s.receive(codec.decodeRequest(bytes) as ProcessingRequest);
      await s.settled();
      // As grpc-js does: serialize (into the serializer's reused buffer), copy into the framed message, then call back.
      for (let i = 0; i < out.length; i++) {
        const bytes = serialize(out[i]!);
        Buffer.allocUnsafe(bytes.length + 5).set(bytes, 5);
        written[i]?.();
      }
      s.close('end');
      await s.settled();
      replies = out;
    };
    const codecOnly = (k: number) => {
      for (const bytes of exchanges[k % exchanges.length]!) codec.decodeRequest(bytes);
      for (const r of replies) {
        const bytes = serialize(r);
        Buffer.allocUnsafe(bytes.length + 5).set(bytes, 5);
      }
    };
    // Warm-up, then timed loops of about `seconds` each.
    // At least 200 exchanges and 1 s: the compiler's background threads count in
    // this process's CPU, and they are busiest in the first second.
    // With --warmup N, exactly N (a count that does not depend on speed: two
    // builds under valgrind then run the same exchanges).
    const warm0 = performance.now();
    if (warmup) for (let k = 0; k < warmup; k++) await one(k);
    else for (let k = 0; k < 200 || performance.now() - warm0 < 1000; k++) await one(k);
    if (allocN) {
      await allocPerExchange(size, allocN, one);
      continue;
    }
    // Also timed in batches of 8 by the wall clock: on a loaded machine the
    // fastest tenth of the batches are those the scheduler did not interrupt,
    // a steadier before/after figure than the CPU total (which includes every
    // collection, and the cost of being preempted).
    let n = 0;
    const batches: number[] = [];
    const t0 = cpuMsNow();
    const wall0 = performance.now();
    while (exchanges_ ? n < exchanges_ : performance.now() - wall0 < seconds * 1000) {
      const b0 = performance.now();
      for (let j = 0; j < 8; j++) await one(n++);
      batches.push((performance.now() - b0) / 8);
    }
    const full = (cpuMsNow() - t0) / n;
    batches.sort((x, y) => x - y);
    const fastTenth = batches[Math.floor(batches.length / 10)]!;
    const c0 = cpuMsNow();
    for (let k = 0; k < n; k++) codecOnly(k);
    const codecMs = (cpuMsNow() - c0) / n;
    process.stdout.write(
      `| ${size} | ${n} | ${(full * 1000).toFixed(0)} | ${(codecMs * 1000).toFixed(0)} | ${((full - codecMs) * 1000).toFixed(0)} | ${(fastTenth * 1000).toFixed(1)} |\n`,
    );
  }
}

/** Bytes allocated per exchange over n exchanges with no collection in between (see --alloc). */
async function allocPerExchange(size: number, n: number, one: (k: number) => Promise<void>): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('--alloc needs node --expose-gc');
  let gcs = 0;
  const obs = new PerformanceObserver((list) => (gcs += list.getEntries().length));
  obs.observe({ entryTypes: ['gc'] });
  gc();
  await new Promise((r) => setTimeout(r, 50));
  gcs = 0;
  const m0 = process.memoryUsage();
  for (let k = 0; k < n; k++) await one(k);
  const m1 = process.memoryUsage();
  await new Promise((r) => setTimeout(r, 50));
  obs.disconnect();
  if (gcs > 0) {
    process.stdout.write(
      `| ${size} | ${n} | (${gcs} collections during the run: use fewer exchanges or a bigger new space) | |\n`,
    );
    return;
  }
  process.stdout.write(
    `| ${size} | ${n} | ${((m1.heapUsed - m0.heapUsed) / n).toFixed(0)} | ${((m1.arrayBuffers - m0.arrayBuffers) / n).toFixed(0)} |\n`,
  );
}
