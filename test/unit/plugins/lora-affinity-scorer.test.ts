import { describe, expect, it } from 'vitest';
import { loraFromMetrics } from '../../../src/datalayer/lora-info.js';
import { signalsFromMetrics } from '../../../src/datalayer/metrics-scraper.js';
import { loraAffinityScorer } from '../../../src/plugins/lora-affinity-scorer.js';
import { decodeSignals, encodeSignals } from '../../../src/state/redis-store.js';
import type { LoraSignals } from '../../../src/scheduling/types.js';
import { build, ctx, endpoints, scoresOf, view } from './fixtures.js';

const withLora = (name: string, lora?: LoraSignals) => ({ ...view(name), ...(lora ? { lora } : {}) });

describe('lora-affinity-scorer', () => {
  it('scores running 1, free slot 0.8, waiting 0.6, full 0, unknown 0 (GIE order)', () => {
    const scorer = build(loraAffinityScorer, {});
    const views = [
      withLora('running', { running: ['sql-lora', 'x'], waiting: [], maxLora: 2 }),
      withLora('free-slot', { running: ['x'], waiting: ['sql-lora'], maxLora: 3 }),
      withLora('waiting-full', { running: ['x'], waiting: ['sql-lora'], maxLora: 2 }),
      withLora('full', { running: ['x', 'y'], waiting: [], maxLora: 2 }),
      withLora('no-info'),
    ];
    expect(scoresOf(scorer, ctx({ request: { model: 'sql-lora' } }), endpoints(...views))).toEqual([
      1, 0.8, 0.6, 0, 0,
    ]);
  });

  it('a base-model request: free slots 0.8, none 0', () => {
    const scorer = build(loraAffinityScorer, {});
    const views = [
      withLora('a', { running: [], waiting: [], maxLora: 1 }),
      withLora('b', { running: ['x'], waiting: [], maxLora: 1 }),
    ];
    expect(scoresOf(scorer, ctx({ request: { model: 'base' } }), endpoints(...views))).toEqual([0.8, 0]);
  });
});

describe('vllm:lora_requests_info scrape', () => {
  const page = [
    '# HELP vllm:lora_requests_info Running stats on lora requests.',
    '# TYPE vllm:lora_requests_info gauge',
    'vllm:lora_requests_info{max_lora="4",running_lora_adapters="old",waiting_lora_adapters=""} 1700000000.0',
    'vllm:lora_requests_info{max_lora="4",running_lora_adapters="sql-lora, tweet",waiting_lora_adapters="chat"} 1700000005.5',
    'vllm:num_requests_waiting{model_name="m"} 2',
    '',
  ].join('\n');

  it('keeps the newest series (largest value) and splits the adapter lists', () => {
    expect(loraFromMetrics(Buffer.from(page))).toEqual({
      running: ['sql-lora', 'tweet'],
      waiting: ['chat'],
      maxLora: 4,
    });
    expect(signalsFromMetrics(page, 5).lora?.running).toEqual(['sql-lora', 'tweet']);
  });

  it('no gauge or a malformed max_lora: no adapters or 0 slots, never a throw', () => {
    expect(loraFromMetrics(Buffer.from('vllm:num_requests_waiting 1\n'))).toBeUndefined();
    expect(
      loraFromMetrics(Buffer.from('vllm:lora_requests_info{max_lora="many",running_lora_adapters=""} 1\n')),
    ).toEqual({ running: [], waiting: [], maxLora: 0 });
    expect(signalsFromMetrics('vllm:num_requests_waiting 1\n', 5).lora).toBeUndefined();
  });

  it('survives the Redis signals encoding, and old entries without it still decode', () => {
    const s = { waitingQueueSize: 1, updatedAtMs: 9, lora: { running: ['a,b'], waiting: [], maxLora: 2 } };
    expect(decodeSignals(encodeSignals(s))).toEqual(s);
    expect(decodeSignals('1,,0.5,9')).toEqual({ waitingQueueSize: 1, kvCacheUsage: 0.5, updatedAtMs: 9 });
    const wrongShape = encodeURIComponent(JSON.stringify({ running: 5, waiting: [], maxLora: 1 }));
    expect(decodeSignals(`1,,0.5,9,${wrongShape}`)).toEqual({
      waitingQueueSize: 1,
      kvCacheUsage: 0.5,
      updatedAtMs: 9,
    });
    expect(decodeSignals('1,,0.5,9,%7Bbroken')).toEqual({
      waitingQueueSize: 1,
      kvCacheUsage: 0.5,
      updatedAtMs: 9,
    });
  });
});
