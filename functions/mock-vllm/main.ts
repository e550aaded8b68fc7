// hermes-router mock-vllm: flags -> config -> server; SIGINT/SIGTERM close
// it. All logic is in src/mockvllm.
import pino from 'pino';
import {
  defaultMockVllmConfig,
  type LegacyMetrics,
  type MockRole,
  type MockVllmConfig,
} from '../../src/mockvllm/config.js';
import { startMockVllm } from '../../src/mockvllm/server.js';
import type { PayloadEncoding } from '../../src/kvcache/events.js';

function num(
  flags: Record<string, string | undefined>,
  key: string,
  flag: string,
  check: (n: number) => boolean,
  what: string,
): number {
  const raw = flags[key];
  const n = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(n) || !check(n)) {
    throw new Error(`${flag}: expected ${what}, got "${raw}"`);
  }
  return n;
}

const int = (min: number) => (n: number) => Number.isInteger(n) && n >= min;
const port = (n: number) => Number.isInteger(n) && n >= 0 && n <= 65535;

export function mockConfigFromFlags(f: Record<string, string | undefined>): MockVllmConfig {
  const connect = (f.kvEventsConnect ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const c of connect) {
    if (!/^tcp:\/\/[^:]+:\d+$/.test(c))
      throw new Error(`--kv-events-connect: expected tcp://host:port, got "${c}"`);
  }
  const cfg: MockVllmConfig = {
    ...defaultMockVllmConfig,
    host: f.host ?? defaultMockVllmConfig.host,
    port: num(f, 'port', '--port', port, 'a port number'),
    model: f.model ?? defaultMockVllmConfig.model,
    role: (f.role ?? 'both') as MockRole,
    prefillTokensPerS: num(
      f,
      'prefillTokensPerS',
      '--prefill-tokens-per-s',
      (n) => n > 0,
      'a positive number',
    ),
    decodeMsPerToken: num(f, 'decodeMsPerToken', '--decode-ms-per-token', (n) => n >= 0, 'a number >= 0'),
    maxNumSeqs: num(f, 'maxNumSeqs', '--max-num-seqs', int(1), 'a positive integer'),
    kvCacheBlocks: num(f, 'kvCacheBlocks', '--kv-cache-blocks', int(1), 'a positive integer'),
    blockSize: num(f, 'blockSize', '--block-size', int(1), 'a positive integer'),
    timeScale: num(f, 'timeScale', '--time-scale', (n) => n > 0, 'a positive number'),
    defaultMaxTokens: num(f, 'defaultMaxTokens', '--default-max-tokens', int(1), 'a positive integer'),
    legacyMetrics: (f.legacyMetrics ?? 'off') as LegacyMetrics,
    kvEventsPort: num(f, 'kvEventsPort', '--kv-events-port', port, 'a port number'),
    kvEventsReplayPort: num(f, 'kvEventsReplayPort', '--kv-events-replay-port', port, 'a port number'),
    kvEventsConnect: connect,
    kvEventsEncoding: (f.kvEventsEncoding ?? 'map') as PayloadEncoding,
    kvEventsBufferSize: num(f, 'kvEventsBuffer', '--kv-events-buffer', int(1), 'a positive integer'),
  };
  if (f.kvEventsTopic !== undefined) cfg.kvEventsTopic = f.kvEventsTopic;
  if (f.advertiseHost) cfg.advertiseHost = f.advertiseHost;
  return cfg;
}

export async function runMockVllm(cfg: MockVllmConfig, logLevel: string): Promise<void> {
  const log = pino({ name: 'mock-vllm', level: logLevel });
  const mock = await startMockVllm(cfg, log);
  log.info(
    {
      port: mock.port,
      model: cfg.model,
      role: cfg.role,
      kvEvents: mock.publisher?.boundEndpoint,
      kvEventsReplay: mock.publisher?.replayEndpoint,
      kvEventsConnect: cfg.kvEventsConnect,
    },
    'mock-vllm listening',
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      log.info('mock-vllm stopping');
      void mock.close().then(resolve, resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
