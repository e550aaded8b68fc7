// The client's x-request-id as the EPP keeps it (logs, decisions ring):
// bounded in size, whatever the client sent (200 ids of 1 MiB each grew the
// EPP by 200 MB and /state/decisions to 231 MB). A long id keeps a readable
// prefix plus a hash of the whole, so two long ids that share a prefix stay
// distinct. The header forwarded to the model server is not changed.
import { createHash } from 'node:crypto';

export const MAX_REQUEST_ID_CHARS = 128;
const PREFIX_CHARS = 96;

export function boundedRequestId(raw: string): string {
  if (raw.length <= MAX_REQUEST_ID_CHARS) return raw;
  const digest = createHash('sha256').update(raw).digest('base64url').slice(0, 22);
  return `${raw.slice(0, PREFIX_CHARS)}…(${raw.length} chars, sha256 ${digest})`;
}
