// vLLM's P/D connector contract as a mock plays it (reference/vllm-pd-kv.md §2).
// A prefill request carries kv_transfer_params.do_remote_decode = true and
// is answered with params naming where its KV blocks can be pulled from; a
// decode request carries do_remote_prefill = true plus those params, and
// its prompt's KV arrives by transfer instead of being computed.
import { RequestError } from '../request/openai.js';
import type { MockRole } from './config.js';

export type PdKind = 'prefill' | 'decode' | 'aggregate';

export interface RemoteKv {
  engineId: string;
  blockIds: number[];
  host: string;
  port: number;
}

export interface PdRequest {
  kind: PdKind;
  remote?: RemoteKv;
}

function field(p: Record<string, unknown>, name: string): unknown {
  return p[name];
}

export function parseKvTransferParams(raw: unknown, role: MockRole): PdRequest {
  if (raw === undefined || raw === null) return { kind: 'aggregate' };
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new RequestError(400, 'kv_transfer_params must be an object', 'kv_transfer_params');
  }
  const p = raw as Record<string, unknown>;
  if (field(p, 'do_remote_decode') === true) {
    if (role === 'decode') {
      throw new RequestError(
        400,
        'this server plays the decode role and does not prefill for a remote decode',
        'kv_transfer_params',
      );
    }
    return { kind: 'prefill' };
  }
  if (field(p, 'do_remote_prefill') === true) {
    if (role === 'prefill') {
      throw new RequestError(
        400,
        'this server plays the prefill role and does not decode from remote KV',
        'kv_transfer_params',
      );
    }
    const engineId = field(p, 'remote_engine_id');
    const blockIds = field(p, 'remote_block_ids');
    const host = field(p, 'remote_host');
    const port = field(p, 'remote_port');
    if (typeof engineId !== 'string' || engineId === '') {
      throw new RequestError(
        400,
        'kv_transfer_params.remote_engine_id must be a non-empty string',
        'kv_transfer_params',
      );
    }
    if (!Array.isArray(blockIds) || !blockIds.every((b) => Number.isInteger(b))) {
      throw new RequestError(
        400,
        'kv_transfer_params.remote_block_ids must be a list of block ids',
        'kv_transfer_params',
      );
    }
    if (typeof host !== 'string' || host === '') {
      throw new RequestError(
        400,
        'kv_transfer_params.remote_host must be a non-empty string',
        'kv_transfer_params',
      );
    }
    if (typeof port !== 'number' || !Number.isInteger(port)) {
      throw new RequestError(400, 'kv_transfer_params.remote_port must be an integer', 'kv_transfer_params');
    }
    return { kind: 'decode', remote: { engineId, blockIds: blockIds as number[], host, port } };
  }
  // Both flags false (or absent): a plain request that happens to carry the field.
  return { kind: 'aggregate' };
}

/** What a prefill instance answers with: where the decode side pulls the KV from. */
export function prefillAnswerParams(
  engineId: string,
  blockIds: number[],
  host: string,
  port: number,
): Record<string, unknown> {
  return {
    do_remote_prefill: true,
    do_remote_decode: false,
    remote_engine_id: engineId,
    remote_block_ids: blockIds,
    remote_host: host,
    remote_port: port,
    tp_size: 1,
  };
}
