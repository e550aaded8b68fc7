// Section 3: memory per endpoint, per tracked prefix block and per indexed
// block. Each figure comes from a fresh `node --expose-gc` child
// (memory-child.ts) so nothing else lives in its heap.
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { formatTable, noiseSummary, round, runs, say, spread } from './report.js';

const run = promisify(execFile);
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'memory-child.js');

export interface MemoryOptions {
  endpoints: number;
  prefixBlocks: number;
  indexerBlocks: number;
  repeats: number;
}

export interface MemoryRow {
  what: string;
  structure: string;
  items: number;
  /** Bytes per item, one entry per repeat. */
  bytes: number[];
}

export interface MemorySection {
  method: string;
  rows: MemoryRow[];
  noise: ReturnType<typeof noiseSummary>;
}

async function child(kind: string, n: number): Promise<Record<string, number>> {
  const { stdout } = await run(process.execPath, ['--expose-gc', CHILD, kind, String(n)], {
    timeout: 120_000,
    maxBuffer: 1024 * 1024,
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, number>;
}

export async function memorySection(o: MemoryOptions): Promise<MemorySection> {
  say(`\n## 3. Memory (heapUsed + external after forced GC, fresh child process each, ${o.repeats} run(s))`);
  const plan: Array<{ kind: string; n: number; fields: Array<[string, string, string]> }> = [
    {
      kind: 'endpoints',
      n: o.endpoints,
      fields: [
        ['storeBytesPerEndpoint', 'per endpoint', 'MemoryStateStore: endpoint, signals, bucket load'],
        ['viewBytesPerEndpoint', 'per endpoint per decision', 'snapshot + endpoint views (transient)'],
      ],
    },
    {
      kind: 'prefix',
      n: o.prefixBlocks,
      fields: [
        ['bytesPerBlock', 'per tracked prefix block', 'MemoryStateStore approximate prefix index (1 holder)'],
        [
          'bytesPerExtraHolder',
          'per extra endpoint holding a block',
          'MemoryStateStore approximate prefix index',
        ],
      ],
    },
    {
      kind: 'indexer',
      n: o.indexerBlocks,
      fields: [
        ['bytesPerBlock', 'per indexed block', 'cache-indexer CacheIndexer + MemoryIndexStore (1 pod)'],
        ['bytesPerExtraHolder', 'per block on one more pod', 'cache-indexer CacheIndexer + MemoryIndexStore'],
      ],
    },
  ];
  const rows: MemoryRow[] = [];
  for (const p of plan) {
    const results: Array<Record<string, number>> = [];
    for (let k = 0; k < o.repeats; k++) results.push(await child(p.kind, p.n));
    for (const [field, what, structure] of p.fields) {
      const row: MemoryRow = {
        what,
        structure,
        items: results[0]!.blocks ?? p.n,
        bytes: results.map((r) => round(r[field]!, 0)),
      };
      rows.push(row);
      say(`  ${what.padEnd(36)} ${runs(row.bytes, 0).padStart(11)} B   (${structure}, ${row.items} items)`);
    }
  }
  return {
    method:
      'node --expose-gc child per figure; (heapUsed + external) after 2 forced GCs, before/after building N items, inputs dropped',
    rows,
    noise: noiseSummary(rows.map((r) => spread(r.bytes))),
  };
}

export function memoryTable(s: MemorySection): string {
  return formatTable({
    header: ['what', 'bytes (runs)', 'structure', 'items'],
    rows: s.rows.map((r) => [r.what, runs(r.bytes, 0), r.structure, r.items]),
  });
}
