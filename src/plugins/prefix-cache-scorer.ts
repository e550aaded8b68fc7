// prefix-cache-scorer (GIE, approximate): without asking the model servers,
// remember which endpoint was sent which prompt blocks and prefer the one
// most likely to hold this prompt's prefix in its KV cache.
//   blocks    = the prompt cut into blockSizeTokens-token blocks, each hash
//               chaining its parent's (src/request/prefix-hash.ts), at most
//               maxPrefixBlocksToMatch (or maxPrefixTokensToMatch /
//               blockSizeTokens when that is > 0); a prompt shorter than
//               one block has none
//   score(e)  = matchedLeadingBlocks(e) / |blocks|,  0 with no blocks or no index
// A PD group scores as its best prefill pod (that is where the prefix is
// computed and cached). After a pick, charges() records the blocks on the
// endpoint that will hold them: the prefill pod for PD, else the primary;
// the StateStore keeps an LRU of lruCapacityPerServer blocks per endpoint.
// `autoTune` is accepted for GIE compatibility; block size and capacity come
// from the parameters here. The deprecated character-sized `blockSize`
// (GIE v1.2; `hashBlockSize` in v1.0) is converted at 4 characters per token.
import { z } from 'zod';
import { definePlugin } from './plugin.js';

const TYPE = 'prefix-cache-scorer';
const CHARS_PER_TOKEN = 4;

const positiveInt = (what: string) =>
  z
    .number({ error: `expected ${what} (integer)` })
    .int(`expected ${what} (integer)`)
    .positive(`expected ${what} > 0`);

export const prefixCacheScorer = definePlugin({
  type: TYPE,
  parameters: z.strictObject({
    autoTune: z.boolean({ error: 'expected true or false' }).default(true),
    blockSizeTokens: positiveInt('a block size in tokens').optional(),
    maxPrefixBlocksToMatch: positiveInt('a number of blocks').default(256),
    maxPrefixTokensToMatch: z
      .number({ error: 'expected a number of tokens (integer)' })
      .int('expected a number of tokens (integer)')
      .nonnegative('expected a number of tokens >= 0')
      .default(0),
    lruCapacityPerServer: positiveInt('a number of blocks').default(31_250),
    blockSize: positiveInt('a block size in characters (deprecated: use blockSizeTokens)').optional(),
    hashBlockSize: positiveInt('a block size in characters (deprecated: use blockSizeTokens)').optional(),
  }),
  create: (name, p) => {
    const legacyChars = p.blockSize ?? p.hashBlockSize;
    const blockSizeTokens =
      p.blockSizeTokens ?? (legacyChars !== undefined ? Math.ceil(legacyChars / CHARS_PER_TOKEN) : 16);
    const maxBlocks =
      p.maxPrefixTokensToMatch > 0
        ? Math.max(1, Math.floor(p.maxPrefixTokensToMatch / blockSizeTokens))
        : p.maxPrefixBlocksToMatch;
    return {
      type: TYPE,
      name,
      dataNeeds: {
        prefix: {
          blockSizeTokens,
          maxPrefixBlocksToMatch: maxBlocks,
          lruCapacityPerServer: p.lruCapacityPerServer,
        },
      },
      score: (ctx, candidates) => {
        const n = candidates.length;
        const scores = new Float64Array(n);
        const total = ctx.data.prefixHashes?.length ?? 0;
        const matches = ctx.data.prefixMatches;
        if (total === 0 || !matches || matches.size === 0) return { scores };
        for (let i = 0; i < n; i++) {
          const c = candidates[i]!;
          let m = 0;
          if (c.kind === 'endpoint') m = matches.get(c.id) ?? 0;
          else for (const v of c.group.prefill) m = Math.max(m, matches.get(v.endpoint.id) ?? 0);
          scores[i] = Math.min(m, total) / total;
        }
        return { scores };
      },
      charges: (ctx, result) => {
        const hashes = ctx.data.prefixHashes;
        if (!hashes || hashes.length === 0) return {};
        const holder = result.pd ? result.pd.prefill : result.primary;
        return { prefixRecord: { endpointId: holder.endpoint.id, hashes } };
      },
    };
  },
});
