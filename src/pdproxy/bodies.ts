// The two request bodies of vLLM's P/D connector flow
// (reference/vllm-pd-kv.md §2): the prefill runs the prompt only and asks
// the prefill pod to keep its KV cache for a remote decode; the decode is
// the client's body plus where to pull that KV cache from.

/** What the prefill asks for: keep the KV blocks for a remote decode. */
export const prefillKvTransferParams = {
  do_remote_decode: true,
  do_remote_prefill: false,
  remote_engine_id: null,
  remote_block_ids: null,
  remote_host: null,
  remote_port: null,
} as const;

export function prefillBody(body: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const out: Record<string, unknown> = {
    ...body,
    max_tokens: 1,
    stream: false,
    kv_transfer_params: { ...prefillKvTransferParams },
  };
  if ('max_completion_tokens' in body) out.max_completion_tokens = 1;
  // A stream-only option is meaningless (and rejected by some servers) once stream is false.
  delete out.stream_options;
  return out;
}

export function decodeBody(
  body: Readonly<Record<string, unknown>>,
  kvTransferParams: unknown,
): Record<string, unknown> {
  return { ...body, kv_transfer_params: kvTransferParams };
}

/** The prefill answer's `kv_transfer_params`, or undefined when it has none. */
export function kvTransferParamsOf(prefillAnswer: unknown): Record<string, unknown> | undefined {
  if (typeof prefillAnswer !== 'object' || prefillAnswer === null) return undefined;
  const p = (prefillAnswer as { kv_transfer_params?: unknown }).kv_transfer_params;
  return typeof p === 'object' && p !== null && !Array.isArray(p)
    ? (p as Record<string, unknown>)
    : undefined;
}
