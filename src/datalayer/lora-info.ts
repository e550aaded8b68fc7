// vLLM's LoRA gauge, `vllm:lora_requests_info{running_lora_adapters="a,b",
// waiting_lora_adapters="c", max_lora="4"} <timestamp>`: the adapters are in
// the labels, so unlike the scanned gauges its lines are parsed in full
// (only its own lines: the page is not decoded). With several series (one
// per engine, or left over), the one with the largest value, the newest
// timestamp, counts (GIE's rule).
import type { LoraSignals } from '../scheduling/types.js';
import { parsePromText } from './prom-text.js';

export const VLLM_LORA_INFO = 'vllm:lora_requests_info';
const NEEDLE = Buffer.from(VLLM_LORA_INFO, 'utf8');
const WANTED = new Set([VLLM_LORA_INFO]);
const LF = 0x0a;

const adapters = (v: string | undefined): string[] =>
  (v ?? '')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);

/** The LoRA adapters a /metrics page reports, or undefined when it has no usable series. */
export function loraFromMetrics(page: Buffer): LoraSignals | undefined {
  let lines = '';
  for (let at = page.indexOf(NEEDLE); at >= 0; at = page.indexOf(NEEDLE, at + NEEDLE.length)) {
    // Only a sample line starting with the name; HELP/TYPE comments start with '#'.
    if (at > 0 && page[at - 1] !== LF) continue;
    const end = page.indexOf(LF, at);
    lines += page.toString('utf8', at, end < 0 ? page.length : end) + '\n';
  }
  if (!lines) return undefined;
  const samples = parsePromText(lines, WANTED).families.get(VLLM_LORA_INFO) ?? [];
  let best: (typeof samples)[number] | undefined;
  for (const s of samples) if (!best || s.value > best.value) best = s;
  if (!best) return undefined;
  const maxLora = Number(best.labels['max_lora']);
  return {
    running: adapters(best.labels['running_lora_adapters']),
    waiting: adapters(best.labels['waiting_lora_adapters']),
    maxLora: Number.isInteger(maxLora) && maxLora >= 0 ? maxLora : 0,
  };
}
