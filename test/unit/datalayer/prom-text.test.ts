import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, test } from 'vitest';
import { MetricsScraper, metricsUrl, signalsFromMetrics } from '../../../src/datalayer/metrics-scraper.js';
import { parsePromText } from '../../../src/datalayer/prom-text.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { MemoryStateStore } from '../../../src/state/memory-store.js';

const VLLM_PAGE = `# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="Qwen/Qwen3-8B"} 3.0
vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-8B"} 7.0
# HELP vllm:gpu_cache_usage_perc (DEPRECATED) GPU KV-cache usage.
vllm:gpu_cache_usage_perc{engine="0",model_name="Qwen/Qwen3-8B"} 0.9
vllm:kv_cache_usage_perc{engine="0",model_name="Qwen/Qwen3-8B"} 0.42
vllm:lora_requests_info{max_lora="4",running_lora_adapters="a,b",waiting_lora_adapters=""} 1.7e+09
vllm:prompt_tokens_total{model_name="x \\"quoted\\" \\\\ back"} 12 1700000000000
`;

describe('parsePromText', () => {
  test('reads names, labels (with escapes), values and ignores comments and timestamps', () => {
    const { families, errors } = parsePromText(VLLM_PAGE);
    expect(errors).toBe(0);
    expect(families.get('vllm:num_requests_waiting')).toEqual([
      { labels: { engine: '0', model_name: 'Qwen/Qwen3-8B' }, value: 3 },
    ]);
    expect(families.get('vllm:lora_requests_info')![0]!.labels.running_lora_adapters).toBe('a,b');
    expect(families.get('vllm:prompt_tokens_total')![0]).toEqual({
      labels: { model_name: 'x "quoted" \\ back' },
      value: 12,
    });
  });

  test('only wanted families are kept; malformed lines are counted, not fatal', () => {
    const { families, errors } = parsePromText(
      'a 1\nb{x="1" 2\nc notanumber\nd +Inf\n',
      new Set(['b', 'c', 'd']),
    );
    expect(families.has('a')).toBe(false);
    expect(errors).toBe(2);
    expect(families.get('d')![0]!.value).toBe(Infinity);
  });
});

describe('signalsFromMetrics', () => {
  test('prefers vllm:kv_cache_usage_perc over the deprecated gauge', () => {
    expect(signalsFromMetrics(VLLM_PAGE, 5)).toEqual({
      waitingQueueSize: 3,
      runningRequests: 7,
      kvCacheUsage: 0.42,
      // The page's vllm:lora_requests_info (src/datalayer/lora-info.ts).
      lora: { running: ['a', 'b'], waiting: [], maxLora: 4 },
      updatedAtMs: 5,
    });
  });

  test('falls back to vllm:gpu_cache_usage_perc; sums engines for counts, max for KV', () => {
    const page = [
      'vllm:num_requests_waiting{engine="0"} 1',
      'vllm:num_requests_waiting{engine="1"} 2',
      'vllm:gpu_cache_usage_perc{engine="0"} 0.3',
      'vllm:gpu_cache_usage_perc{engine="1"} 0.6',
    ].join('\n');
    expect(signalsFromMetrics(page, 1)).toEqual({ waitingQueueSize: 3, kvCacheUsage: 0.6, updatedAtMs: 1 });
  });

  test('a page without any vLLM gauge is an error', () => {
    expect(() => signalsFromMetrics('process_cpu_seconds_total 1\n', 0)).toThrow(/vllm:num_requests_waiting/);
  });
});

describe('MetricsScraper', () => {
  test('scrapes into the store, counts failures, keeps polling', async () => {
    let fail = false;
    const srv = createServer((req, res) => {
      if (fail) res.writeHead(500).end('boom');
      else res.end('vllm:num_requests_waiting 4\nvllm:kv_cache_usage_perc 0.5\n');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as AddressInfo).port;
    const store = new MemoryStateStore();
    const ep = { id: `127.0.0.1:${port}`, name: 'a', address: '127.0.0.1', port, labels: {} };
    await store.replaceEndpoints([ep]);
    const errors: string[] = [];
    const scraper = new MetricsScraper({
      store,
      logger: silentLogger(),
      intervalMs: 10,
      hooks: { onScrapeError: (id) => errors.push(id) },
    });
    scraper.setEndpoints([ep]);
    scraper.start();
    try {
      for (let i = 0; i < 100 && !(await store.readSnapshot({})).signals.get(ep.id); i++)
        await new Promise((r) => setTimeout(r, 10));
      expect((await store.readSnapshot({})).signals.get(ep.id)).toMatchObject({
        waitingQueueSize: 4,
        kvCacheUsage: 0.5,
      });
      fail = true;
      for (let i = 0; i < 100 && errors.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
      expect(errors.length).toBeGreaterThanOrEqual(2);
      expect(scraper.stats.errors).toBe(errors.length);
    } finally {
      await scraper.stop();
      srv.close();
      srv.closeAllConnections();
    }
  });

  test('metrics URL: metricsPort/metricsPath override, IPv6 bracketed', () => {
    expect(metricsUrl({ id: 'x', name: 'x', address: '::1', port: 8000, labels: {} })).toBe(
      'http://[::1]:8000/metrics',
    );
    expect(
      metricsUrl({
        id: 'x',
        name: 'x',
        address: '10.0.0.1',
        port: 8000,
        labels: {},
        metricsPort: 9000,
        metricsPath: '/m',
      }),
    ).toBe('http://10.0.0.1:9000/m');
  });
});
