// Reading an HTTP request body with bounds (gateway-dev, pd-proxy, mock-vllm).
import type { IncomingMessage } from 'node:http';
import { BodyBuffer } from './body-buffer.js';
import { RequestError } from './errors.js';
import type { JsonBounds } from './json-scan.js';

export class BodyTooLargeError extends Error {
  constructor(
    readonly limit: number,
    message = `request body exceeds ${limit} bytes`,
  ) {
    super(message);
    this.name = 'BodyTooLargeError';
  }
}

/**
 * Reads a request body into one buffer (BodyBuffer: chunks are copied, not
 * kept), refusing more than `limit` bytes or too many chunks. With `json`,
 * the JSON shape is scanned as bytes arrive and a body nested too deep is
 * refused with a RequestError 400 at once.
 */
export function readBody(
  req: IncomingMessage,
  limit: number,
  json: JsonBounds | false = false,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const body = new BodyBuffer({
      maxBytes: limit,
      json,
      expectedBytes: Number(req.headers['content-length']) || undefined,
    });
    let refused: Error | undefined;
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (!refused) {
        try {
          body.append(c);
          return;
        } catch (e) {
          refused =
            e instanceof RequestError && e.status === 413
              ? new BodyTooLargeError(limit, e.message)
              : (e as Error);
        }
      }
      // Keep draining (discarding) so the client is still reading when the
      // answer goes out; only a sender that goes on far past the limit is cut off.
      if (size > limit * 4) {
        reject(refused);
        req.destroy();
      }
    });
    req.on('end', () => {
      if (refused) return reject(refused);
      try {
        resolve(body.finish());
      } catch (e) {
        reject(e as Error);
      }
    });
    req.on('error', reject);
  });
}

/**
 * The same for a web ReadableStream (hono's request body): each chunk goes
 * into a BodyBuffer as it arrives, so a body nested too deep is refused at
 * that chunk and no further copy of it is made. After a refusal the rest is
 * read and dropped, so the client is still reading when the answer goes out.
 * Throws RequestError (413, 400).
 */
export async function readBodyStream(
  stream: ReadableStream<Uint8Array> | null,
  limit: number,
  json: JsonBounds | false = false,
): Promise<Buffer> {
  const body = new BodyBuffer({ maxBytes: limit, json });
  if (!stream) return body.finish();
  let refused: unknown;
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (refused !== undefined) continue;
    try {
      body.append(value);
    } catch (e) {
      refused = e;
    }
  }
  if (refused !== undefined) throw refused;
  return body.finish();
}
