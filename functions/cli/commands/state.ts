import { Command, Option } from 'commander';
import type { SubcommandModule } from '../main.js';

export const command: SubcommandModule['command'] = {
  name: 'state',
  summary:
    'inspect the shared scheduling state (endpoints, signals, loads, decisions) from Redis or an EPP admin API',
  async run(args) {
    const { VIEWS, runState } = await import('../../state/main.js');
    let what: string[] = [];
    const cmd = new Command('hermes-router state')
      .description(this.summary)
      .argument('[what...]', `${VIEWS.join(' | ')} (default: all)`)
      .addOption(
        new Option(
          '--redis-url <url>',
          'read straight from Redis (redis://, rediss://, redis+sentinel://, redis+cluster://)',
        ).env('REDIS_URL'),
      )
      .addOption(
        new Option(
          '--pool <name>',
          "the EPPs' --pool-name (their Redis key namespace; 'default' with --endpoints-file)",
        )
          .env('POOL_NAME')
          .default('default'),
      )
      .addOption(
        new Option(
          '--admin-url <url>',
          "read from a running EPP's admin API instead, e.g. http://127.0.0.1:9091",
        ).env('ADMIN_URL'),
      )
      .addOption(new Option('--admin-token <token>', 'bearer token of the admin API').env('ADMIN_TOKEN'))
      .addOption(new Option('--json', 'print JSON (the admin API bodies) for scripts'))
      .addOption(new Option('--limit <n>', 'decisions to show').env('STATE_LIMIT').default('20'))
      .addOption(
        new Option('--metrics-staleness-threshold <ms>', 'signals older than this are shown stale')
          .env('METRICS_STALENESS_THRESHOLD')
          .default('2000'),
      )
      .addOption(new Option('--timeout <ms>', 'connect/request timeout').default('2000'))
      .action((w: string[]) => {
        what = w;
      })
      .parse(args, { from: 'user' });
    const o = cmd.opts<Record<string, string | boolean | undefined>>();
    const bad = what.filter((w) => !(VIEWS as readonly string[]).includes(w));
    if (bad.length > 0) {
      process.stderr.write(
        `state: unknown view ${bad.map((b) => JSON.stringify(b)).join(', ')}; choose from ${VIEWS.join(', ')}\n`,
      );
      return 2;
    }
    const ints: Record<string, number> = {};
    for (const k of ['limit', 'metricsStalenessThreshold', 'timeout']) {
      const n = Number(o[k]);
      if (!Number.isInteger(n) || n <= 0) {
        process.stderr.write(
          `state: --${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} must be a positive integer, got ${JSON.stringify(o[k])}\n`,
        );
        return 2;
      }
      ints[k] = n;
    }
    try {
      return await runState({
        views: (what.length > 0 ? [...new Set(what)] : [...VIEWS]) as (typeof VIEWS)[number][],
        redisUrl: o.redisUrl as string | undefined,
        pool: o.pool as string | undefined,
        adminUrl: o.adminUrl as string | undefined,
        adminToken: o.adminToken as string | undefined,
        json: o.json === true,
        limit: ints.limit!,
        stalenessMs: ints.metricsStalenessThreshold!,
        timeoutMs: ints.timeout!,
      });
    } catch (e) {
      process.stderr.write(`state: ${(e as Error).message}\n`);
      return 1;
    }
  },
};
