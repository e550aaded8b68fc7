// mock-vllm serving LoRA adapters: requests may name an adapter of
// --lora-modules, and /metrics reports vllm:lora_requests_info as vLLM does,
// which the EPP's scrape (src/datalayer/lora-info.ts) reads back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loraFromMetrics } from '../../../src/datalayer/lora-info.js';
import { freePort } from '../../helpers/ports.js';
import { eventually } from '../../helpers/wait.js';
import { postJson, spawnFunction, type Spawned } from './spawn.js';

let mock: Spawned;

beforeAll(async () => {
  const port = await freePort();
  // One seat, ~50 ms per token: a second request waits while the first runs.
  mock = await spawnFunction(
    [
      'mock-vllm',
      '--port',
      String(port),
      '--model',
      'base',
      '--lora-modules',
      'sql-lora=/adapters/sql,tweet-lora',
      '--max-loras',
      '2',
      '--max-num-seqs',
      '1',
      '--decode-ms-per-token',
      '50',
    ],
    port,
    '/health',
  );
});

afterAll(async () => {
  await mock?.stop();
});

const lora = async () => loraFromMetrics(Buffer.from(await (await fetch(`${mock.url}/metrics`)).text()));

describe('mock-vllm LoRA adapters', () => {
  it('reports running and waiting adapters and max_lora while requests run', async () => {
    expect(await lora()).toEqual({ running: [], waiting: [], maxLora: 2 });
    const body = (model: string) => ({ model, prompt: 'hello', max_tokens: 20 });
    const first = postJson(`${mock.url}/v1/completions`, body('sql-lora'));
    await eventually(async () => (await lora())?.running[0] === 'sql-lora', 5_000, 'sql-lora running');
    const second = postJson(`${mock.url}/v1/completions`, body('tweet-lora'));
    await eventually(async () => (await lora())?.waiting[0] === 'tweet-lora', 5_000, 'tweet-lora waiting');
    expect(await lora()).toEqual({ running: ['sql-lora'], waiting: ['tweet-lora'], maxLora: 2 });
    const [a, b] = await Promise.all([first, second]);
    expect(a.status).toBe(200);
    // The answer names the adapter, as vLLM's does.
    expect(a.json.model).toBe('sql-lora');
    expect(b.json.model).toBe('tweet-lora');
    expect(await lora()).toEqual({ running: [], waiting: [], maxLora: 2 });
  });

  it('refuses an adapter it does not serve with 404', async () => {
    const r = await postJson(`${mock.url}/v1/completions`, { model: 'nope', prompt: 'x' });
    expect(r.status).toBe(404);
  });
});
