import { Command, Option } from 'commander';
import type { SubcommandModule } from '../main.js';
import { parseDurationMs } from '../../../src/common/duration.js';

export const command: SubcommandModule['command'] = {
  name: 'demo',
  summary:
    'the whole stack on loopback in one command: gateway, EPP, mock vLLMs, cache-indexer (--pd: a PD group)',
  async run(args) {
    const cmd = new Command('hermes-router demo')
      .description(this.summary)
      .addOption(
        new Option('--port <n>', 'gateway port (the other processes take free ports)')
          .env('PORT')
          .default('8081'),
      )
      .addOption(
        new Option('--pd', 'run a PD group (leader pd-proxy + prefill + decode) with epp-pd-bucket')
          .env('PD')
          .default(false),
      )
      .addOption(new Option('--pd-groups <n>', 'PD groups with --pd').env('PD_GROUPS').default('1'))
      .addOption(new Option('--pd-prefill <n>', 'prefill pods per PD group').env('PD_PREFILL').default('1'))
      .addOption(new Option('--pd-decode <n>', 'decode pods per PD group').env('PD_DECODE').default('1'))
      .addOption(
        new Option(
          '--profile <file>',
          'any EndpointPickerConfig or values file (default: examples/profiles/epp-kv-cache-aware.yaml)',
        ).env('PROFILE'),
      )
      .addOption(new Option('--mocks <n>', 'aggregated model servers').env('MOCKS').default('3'))
      .addOption(
        new Option('--model <name>', 'model name the mock servers serve').env('MODEL').default('mock-model'),
      )
      .addOption(new Option('--redis-url <url>', 'shared state in Redis instead of memory').env('REDIS_URL'))
      .addOption(
        new Option('--time-scale <x>', 'mock servers run x times faster than real time')
          .env('TIME_SCALE')
          .default('1'),
      )
      .addOption(
        new Option('--progress-interval <duration>', 'how often to print traffic progress')
          .env('PROGRESS_INTERVAL')
          .default('2s'),
      )
      .addOption(
        new Option('--ready-timeout <duration>', 'how long each process may take to start')
          .env('READY_TIMEOUT')
          .default('30s'),
      )
      .addOption(
        new Option('--keep-logs', 'keep the temp dir with logs and generated files')
          .env('KEEP_LOGS')
          .default(false),
      )
      .addOption(
        new Option('--log-level <level>', 'log level of the child processes')
          .env('LOG_LEVEL')
          .default('info'),
      )
      .parse(args, { from: 'user' });
    const o = cmd.opts<Record<string, string | boolean | undefined>>();
    const int = (name: string, v: unknown, min: number, max: number) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max)
        throw new Error(`--${name}: expected an integer ${min}..${max}, got "${String(v)}"`);
      return n;
    };
    let flags;
    try {
      const timeScale = Number(o.timeScale);
      if (!(timeScale > 0))
        throw new Error(`--time-scale: expected a positive number, got "${String(o.timeScale)}"`);
      flags = {
        gatewayPort: int('port', o.port, 1, 65535),
        pd: o.pd === true || o.pd === 'true',
        pdGroups: int('pd-groups', o.pdGroups, 1, 8),
        pdPrefill: int('pd-prefill', o.pdPrefill, 1, 8),
        pdDecode: int('pd-decode', o.pdDecode, 1, 8),
        profile: typeof o.profile === 'string' ? o.profile : undefined,
        mocks: int('mocks', o.mocks, 1, 32),
        model: String(o.model),
        redisUrl: typeof o.redisUrl === 'string' ? o.redisUrl : undefined,
        timeScale,
        mockArgs: [],
        logLevel: String(o.logLevel),
        progressMs: parseDurationMs(String(o.progressInterval), '--progress-interval'),
        readyTimeoutMs: parseDurationMs(String(o.readyTimeout), '--ready-timeout'),
        keepLogs: o.keepLogs === true || o.keepLogs === 'true',
      };
    } catch (e) {
      process.stderr.write(`demo: ${(e as Error).message}\n`);
      return 2;
    }
    const { runDemo } = await import('../../demo/main.js');
    return runDemo(flags);
  },
};
