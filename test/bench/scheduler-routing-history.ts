// `npm run bench -- scheduler-routing-history [--quick] [--endpoints 8,32] [--tokens 1024,8192] [--indexer compute|cached]`
//
// Decision-time cost of scorer-aggregate-kv-cache-aware's `routingHistory`
// option: the scheduler benchmark's cell (real Director + MemoryStateStore,
// shared-prefix bodies) run for the shipped epp-kv-cache-aware profile and
// for the same profile with `routingHistory: true`, alternating per cell
// so both see the same machine load. The option adds prompt hashing in
// 16-token blocks (first 256), a match in the approximate prefix index and
// the LRU record of the pick.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinRegistry } from '../../src/plugins/index.js';
import { benchCell, type IndexerMode } from './scheduler.js';
import { PROFILES_DIR, loadProfileText } from './sim/configs.js';

function listArg(args: string[], flag: string, def: number[]): number[] {
  const i = args.indexOf(flag);
  return i < 0 ? def : args[i + 1]!.split(',').map(Number);
}

export async function run(args: string[]): Promise<void> {
  const quick = args.includes('--quick');
  const i = args.indexOf('--indexer');
  const indexerMode = (i < 0 ? 'compute' : args[i + 1]) as IndexerMode;
  if (indexerMode !== 'compute' && indexerMode !== 'cached')
    throw new Error('--indexer must be compute or cached');
  const endpointsList = listArg(args, '--endpoints', [8, 32, 128]);
  const tokensList = listArg(args, '--tokens', [1024, 8192, 32768]);
  const warmup = quick ? 50 : 200;
  const timed = quick ? 200 : 1000;
  const base = readFileSync(join(PROFILES_DIR, 'epp-kv-cache-aware.yaml'), 'utf8');
  // The example sets every product parameter explicitly; add the option after the last one.
  const marker = 'kvCacheManagerTimeout: 5000000000';
  if (!base.includes(marker)) throw new Error(`epp-kv-cache-aware.yaml no longer contains "${marker}"`);
  const indent = /^( *)kvCacheManagerTimeout/m.exec(base)![1]!;
  const variants = [
    { name: 'epp-kv-cache-aware', text: base },
    { name: '+ routingHistory', text: base.replace(marker, `${marker}\n${indent}routingHistory: true`) },
  ];
  const loaded = variants.map((v) => {
    const out = loadProfileText(v.text, v.name, builtinRegistry());
    if (!out.ok) throw new Error(`${v.name}: ${out.error}`);
    return { name: v.name, loaded: out.loaded };
  });
  process.stdout.write(
    `routingHistory decision cost (Director + MemoryStateStore, indexer answer: ${indexerMode}), ${warmup} warm-up + ${timed} timed decisions per cell\n\n`,
  );
  process.stdout.write(
    '| profile | endpoints | tokens | p50 us | p99 us | sched p50 us | decisions/s/core |\n|---|---|---|---|---|---|---|\n',
  );
  let seed = 1;
  for (const n of endpointsList) {
    for (const t of tokensList) {
      const cellSeed = seed++;
      for (const v of loaded) {
        const r = await benchCell(v.name, v.loaded, n, t, warmup, timed, cellSeed, indexerMode);
        process.stdout.write(
          `| ${v.name} | ${n} | ${t} | ${r.p50Us} | ${r.p99Us} | ${r.scheduleP50Us} | ${r.decisionsPerSecPerCore} |\n`,
        );
      }
    }
  }
}
