// `hermes-router state [what...]`: flags -> one report of the shared state
// (src/admin/state-report.ts), read from Redis or an EPP's admin API.
import {
  commandFor,
  parseOptions,
  usageError,
  type FunctionCommand,
  type OptionValues,
} from '../../src/config/cli-options.js';
import { resolveSecret } from '../../src/common/secrets.js';
import { STATE_SUMMARY, STATE_VIEWS, stateOptions } from '../../src/admin/state-options.js';

type View = (typeof STATE_VIEWS)[number];

export const command: FunctionCommand = {
  name: 'state',
  summary: STATE_SUMMARY,
  async run(args) {
    let what: string[] = [];
    let o: OptionValues<typeof stateOptions>;
    let secrets: { redisUrl?: string; adminToken?: string };
    try {
      const cmd = commandFor('hermes-router state', STATE_SUMMARY, stateOptions)
        .argument('[what...]', `${STATE_VIEWS.join(' | ')} (default: all)`)
        .action((w: string[]) => {
          what = w;
        })
        .parse(args, { from: 'user' });
      o = parseOptions(stateOptions, cmd);
      const bad = what.filter((w) => !(STATE_VIEWS as readonly string[]).includes(w));
      if (bad.length > 0) {
        throw new Error(
          `unknown view ${bad.map((b) => JSON.stringify(b)).join(', ')}; choose from ${STATE_VIEWS.join(', ')}`,
        );
      }
      secrets = {
        redisUrl: resolveSecret({ flag: '--redis-url', value: o.redisUrl, file: o.redisUrlFile }),
        adminToken: resolveSecret({ flag: '--admin-token', value: o.adminToken, file: o.adminTokenFile }),
      };
    } catch (e) {
      return usageError('state', e);
    }
    const { runState } = await import('../../src/admin/state-report.js');
    try {
      return await runState({
        views: (what.length > 0 ? [...new Set(what)] : [...STATE_VIEWS]) as View[],
        ...secrets,
        pool: o.pool,
        adminUrl: o.adminUrl,
        json: o.json,
        limit: o.limit,
        stalenessMs: o.stalenessMs,
        timeoutMs: o.timeoutMs,
      });
    } catch (e) {
      process.stderr.write(`state: ${(e as Error).message}\n`);
      return 1;
    }
  },
};
