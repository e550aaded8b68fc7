// --tokenizer: text prompts are tokenised with a model's tokenizer.json (and
// chats rendered with its chat template), so they match the token ids the
// model server reported in its KV events.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CacheIndexer } from '../../../src/cacheindexer/indexer.js';
import { MemoryIndexStore } from '../../../src/cacheindexer/memory-store.js';
import { IndexerMetrics } from '../../../src/cacheindexer/metrics.js';
import {
  loadHuggingFaceTokenizer,
  NO_TOKEN,
  simpleTokenizer,
} from '../../../src/cacheindexer/prompt-tokenizer.js';
import { buildIndexerApp } from '../../../src/cacheindexer/server.js';
import { parseMatchRequest } from '../../../src/cacheindexer/match-request.js';
import { encodeBatch } from '../../../src/kvcache/events.js';
import { tokenizeSimple } from '../../../src/request/tokens.js';

// A tiny word-level tokenizer in the Hugging Face tokenizer.json format:
// whitespace pre-tokenizer, <s> prepended by the post-processor.
const words = [
  '<s>',
  '<unk>',
  '<|',
  '|>',
  'user',
  'assistant',
  'system',
  'hello',
  'world',
  'the',
  'cache',
  'is',
  'warm',
];
const vocab = Object.fromEntries(words.map((w, i) => [w, i]));
const tokenizerJson = {
  version: '1.0',
  truncation: null,
  padding: null,
  added_tokens: [
    {
      id: 0,
      content: '<s>',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    },
    {
      id: 1,
      content: '<unk>',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    },
  ],
  normalizer: null,
  pre_tokenizer: { type: 'Whitespace' },
  post_processor: {
    type: 'TemplateProcessing',
    single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
    pair: [{ Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
    special_tokens: { '<s>': { id: '<s>', ids: [0], tokens: ['<s>'] } },
  },
  decoder: null,
  model: { type: 'WordLevel', vocab, unk_token: '<unk>' },
};
const tokenizerConfig = {
  bos_token: '<s>',
  eos_token: '<unk>',
  chat_template:
    '{{ bos_token }}{% for m in messages %}<|{{ m.role }}|> {{ m.content }} {% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}',
};

function writeTokenizer(withConfig = true): string {
  const dir = mkdtempSync(join(tmpdir(), 'hermes-tok-'));
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson));
  if (withConfig) writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig));
  return join(dir, 'tokenizer.json');
}

describe('prompt tokenizers', () => {
  it('encodes completions with special tokens and chats through the chat template', () => {
    const tok = loadHuggingFaceTokenizer(writeTokenizer());
    expect(Array.from(tok.encodePrompt('hello world'))).toEqual([0, 7, 8]);
    expect(Array.from(tok.encodeChat([{ role: 'user', content: 'hello world' }]))).toEqual([
      0, 2, 4, 3, 7, 8, 2, 5, 3,
    ]);
    // A piece the tokenizer has no id for never reads as a real token.
    expect(Array.from(tok.encodePrompt('hello mars'))).toEqual([0, 7, NO_TOKEN]);
  });

  it('keeps the simple tokenizer as the default, as mock-vllm tokenises', () => {
    expect(Array.from(simpleTokenizer.encodePrompt('abcdefgh'))).toEqual(
      Array.from(tokenizeSimple('abcdefgh')),
    );
    const req = parseMatchRequest(JSON.stringify({ model: 'm', prompt: 'abcdefgh', candidates: ['a:1'] }));
    expect(Array.from(req.tokens)).toEqual(Array.from(tokenizeSimple('abcdefgh')));
  });

  it('names the file when the tokenizer is unusable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hermes-tok-'));
    writeFileSync(join(dir, 'tokenizer.json'), '{not json');
    expect(() => loadHuggingFaceTokenizer(join(dir, 'tokenizer.json'))).toThrow(
      /tokenizer\.json: expected a JSON object/,
    );
    expect(() => loadHuggingFaceTokenizer(join(dir, 'missing.json'))).toThrow(
      /missing\.json: cannot read it/,
    );
  });

  it('/match_sort finds a text prompt in KV events reported as the model tokenizer ids', async () => {
    const tok = loadHuggingFaceTokenizer(writeTokenizer());
    const store = new MemoryIndexStore();
    const late: { ix?: CacheIndexer } = {};
    const metrics = new IndexerMetrics(() => late.ix!.totals());
    const ix = new CacheIndexer(store, {
      blockSize: 2,
      maxLookupBlocks: 100,
      log: pino({ level: 'silent' }),
      metrics,
    });
    late.ix = ix;
    const prompt = 'the cache is warm hello world the';
    const ids = Array.from(tok.encodePrompt(prompt)); // 8 tokens: 4 blocks of 2
    expect(ids).toHaveLength(8);
    ix.onMessage(
      '10.0.0.1:8000',
      'connect',
      0n,
      encodeBatch({
        ts: 1,
        dataParallelRank: 0,
        events: [
          {
            type: 'BlockStored',
            blockHashes: [11, 12, 13],
            parentBlockHash: null,
            tokenIds: ids.slice(0, 6),
            blockSize: 2,
            loraId: null,
            medium: 'GPU',
            loraName: null,
          },
        ],
      }),
    );
    await ix.settled();
    const app = buildIndexerApp({ indexer: ix, metrics, tokenizer: tok });
    const res = await app.request('/match_sort', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', prompt, candidates: ['10.0.0.1:8000', '10.0.0.2:8000'] }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      results: Array<{ endpoint: string; matchedBlocks: number; totalBlocks: number }>;
    };
    expect(body.results[0]).toMatchObject({ endpoint: '10.0.0.1:8000', matchedBlocks: 3, totalBlocks: 4 });
    expect(body.results[1]).toMatchObject({ endpoint: '10.0.0.2:8000', matchedBlocks: 0 });
  });
});
