import { Command, Option } from 'commander';
import type { SubcommandModule } from '../main.js';

export const command: SubcommandModule['command'] = {
  name: 'mock-vllm',
  summary:
    'a simulated vLLM model server (OpenAI API, vLLM metrics, prefix cache, queueing, KV events, PD roles)',
  async run(args) {
    const cmd = new Command('hermes-router mock-vllm')
      .description(this.summary)
      .addOption(new Option('--port <n>', 'HTTP port (0: any free port)').env('PORT').default('8000'))
      .addOption(
        new Option('--host <addr>', 'address to listen on (HTTP and ZMQ)').env('HOST').default('127.0.0.1'),
      )
      .addOption(new Option('--model <name>', 'served model name').env('MODEL').default('mock-model'))
      .addOption(
        new Option('--role <role>', 'P/D role')
          .choices(['prefill', 'decode', 'both'])
          .env('ROLE')
          .default('both'),
      )
      .addOption(
        new Option('--prefill-tokens-per-s <n>', 'prefill speed for uncached prompt tokens')
          .env('PREFILL_TOKENS_PER_S')
          .default('20000'),
      )
      .addOption(
        new Option('--decode-ms-per-token <ms>', 'time per generated token')
          .env('DECODE_MS_PER_TOKEN')
          .default('20'),
      )
      .addOption(
        new Option('--max-num-seqs <n>', 'requests running at once; the rest wait')
          .env('MAX_NUM_SEQS')
          .default('16'),
      )
      .addOption(
        new Option('--kv-cache-blocks <n>', 'KV cache size in blocks').env('KV_CACHE_BLOCKS').default('4096'),
      )
      .addOption(new Option('--block-size <n>', 'tokens per KV block').env('BLOCK_SIZE').default('16'))
      .addOption(
        new Option('--time-scale <x>', 'simulated time runs x times faster than real time')
          .env('TIME_SCALE')
          .default('1'),
      )
      .addOption(
        new Option('--default-max-tokens <n>', 'output tokens when the request sets no max_tokens')
          .env('DEFAULT_MAX_TOKENS')
          .default('16'),
      )
      .addOption(
        new Option('--legacy-metrics [mode]', 'also (both) or only (only) emit vllm:gpu_cache_usage_perc')
          .choices(['off', 'both', 'only'])
          .preset('both')
          .env('LEGACY_METRICS')
          .default('off'),
      )
      .addOption(
        new Option('--kv-events-port <n>', 'bind a ZMQ PUB socket for KV events on this port (0: off)')
          .env('KV_EVENTS_PORT')
          .default('0'),
      )
      .addOption(
        new Option('--kv-events-replay-port <n>', 'bind a ZMQ ROUTER replay socket on this port (0: off)')
          .env('KV_EVENTS_REPLAY_PORT')
          .default('0'),
      )
      .addOption(
        new Option(
          '--kv-events-connect <endpoints>',
          "connect the PUB socket to consumers' bound SUB sockets, tcp://host:port,...",
        ).env('KV_EVENTS_CONNECT'),
      )
      .addOption(
        new Option('--kv-events-topic <topic>', 'topic frame (default kv@<host>:<port>@<model>)').env(
          'KV_EVENTS_TOPIC',
        ),
      )
      .addOption(
        new Option('--kv-events-encoding <enc>', 'payload encoding: map (current vLLM) or array (older vLLM)')
          .choices(['map', 'array'])
          .env('KV_EVENTS_ENCODING')
          .default('map'),
      )
      .addOption(
        new Option('--kv-events-buffer <n>', 'event batches kept for replay')
          .env('KV_EVENTS_BUFFER')
          .default('10000'),
      )
      .addOption(
        new Option(
          '--advertise-host <addr>',
          'host named in kv_transfer_params and the topic (default --host)',
        ).env('ADVERTISE_HOST'),
      )
      .addOption(new Option('--log-level <level>', 'pino level').env('LOG_LEVEL').default('info'))
      .parse(args, { from: 'user' });
    const o = cmd.opts<Record<string, string | undefined>>();
    const { runMockVllm, mockConfigFromFlags } = await import('../../mock-vllm/main.js');
    let cfg;
    try {
      cfg = mockConfigFromFlags(o);
    } catch (e) {
      process.stderr.write(`mock-vllm: ${(e as Error).message}\n`);
      return 2;
    }
    return runMockVllm(cfg, o.logLevel ?? 'info');
  },
};
