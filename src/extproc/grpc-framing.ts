// gRPC's message framing over HTTP/2 DATA frames, for the lean transport
// (h2-transport.ts). Each message is a 5-byte prefix (a compressed flag byte,
// then the payload length as a big-endian uint32) followed by the payload.
// DATA frames carry any cut of that byte stream: a prefix split across
// frames, several messages in one frame, a message spread over many.
//
// A message that lies whole inside one chunk is handed on as a view of that
// chunk (node:http2 gives each socket read its own memory and never reuses
// it), so the decoder's bytes fields stay views, as under grpc-js. A message
// spread over chunks is copied once, into a buffer of its exact size.

/** gRPC status codes used by the transport (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

export interface FramingError {
  code: number;
  details: string;
}

const PREFIX = 5;

/**
 * Reassembles length-prefixed messages from DATA chunks. `push` calls
 * `onMessage` for every complete message, in order, and returns an error
 * (the stream must end with it) for a message over the limit or a
 * compressed one; after an error it ignores what follows.
 */
export class GrpcDeframer {
  /** The prefix being read (bytes of it so far in `prefixHave`). */
  private readonly prefix = Buffer.allocUnsafe(PREFIX);
  private prefixHave = 0;
  /** The message being assembled across chunks, once its prefix is known. */
  private body: Buffer | undefined;
  private bodyHave = 0;
  private failed = false;

  constructor(
    private readonly maxMessageBytes: number,
    private readonly onMessage: (payload: Buffer) => void,
    /** The request's grpc-encoding header, for the error message of a compressed message. */
    private readonly encoding: string | undefined = undefined,
  ) {}

  /** True while a message is partly received (a prefix or a payload not yet whole). */
  get partial(): boolean {
    return this.prefixHave > 0 || this.body !== undefined;
  }

  push(chunk: Buffer): FramingError | undefined {
    if (this.failed) return undefined;
    let at = 0;
    const end = chunk.length;
    while (at < end) {
      if (this.body) {
        const take = Math.min(this.body.length - this.bodyHave, end - at);
        chunk.copy(this.body, this.bodyHave, at, at + take);
        this.bodyHave += take;
        at += take;
        if (this.bodyHave === this.body.length) {
          const done = this.body;
          this.body = undefined;
          this.bodyHave = 0;
          this.onMessage(done);
        }
        continue;
      }
      let flag: number;
      let length: number;
      if (this.prefixHave === 0 && end - at >= PREFIX) {
        flag = chunk[at]!;
        length = chunk.readUInt32BE(at + 1);
        at += PREFIX;
      } else {
        const take = Math.min(PREFIX - this.prefixHave, end - at);
        chunk.copy(this.prefix, this.prefixHave, at, at + take);
        this.prefixHave += take;
        at += take;
        if (this.prefixHave < PREFIX) return undefined;
        this.prefixHave = 0;
        flag = this.prefix[0]!;
        length = this.prefix.readUInt32BE(1);
      }
      const err = this.check(flag, length);
      if (err) {
        this.failed = true;
        return err;
      }
      if (end - at >= length) {
        // Whole inside this chunk: a view, no copy.
        const payload = chunk.subarray(at, at + length);
        at += length;
        this.onMessage(payload);
        continue;
      }
      this.body = Buffer.allocUnsafe(length);
      this.bodyHave = 0;
    }
    return undefined;
  }

  private check(flag: number, length: number): FramingError | undefined {
    if (flag === 1) {
      return this.encoding && this.encoding !== 'identity'
        ? {
            code: GrpcStatus.UNIMPLEMENTED,
            details: `Received message compressed with unsupported encoding "${this.encoding}"`,
          }
        : {
            code: GrpcStatus.INTERNAL,
            details: 'Received a compressed message but no grpc-encoding was given',
          };
    }
    if (flag !== 0) {
      return { code: GrpcStatus.INTERNAL, details: `Invalid gRPC message flag byte ${flag}` };
    }
    if (length > this.maxMessageBytes) {
      // grpc-js's wording (stream-decoder.ts), so a client sees the same status either way.
      return {
        code: GrpcStatus.RESOURCE_EXHAUSTED,
        details: `Received message larger than max (${length} vs. ${this.maxMessageBytes})`,
      };
    }
    return undefined;
  }
}

/** One message framed: the prefix (uncompressed) and a copy of the payload in one fresh buffer. */
export function frameMessage(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(PREFIX + payload.length);
  out[0] = 0;
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, PREFIX);
  return out;
}

/** The grpc-timeout header in milliseconds (gRPC over HTTP/2: 1-8 digits and a unit), or undefined if malformed. */
export function parseGrpcTimeout(v: string): number | undefined {
  const m = /^(\d{1,8})([HMSmun])$/.exec(v);
  if (!m) return undefined;
  const n = Number(m[1]);
  switch (m[2]) {
    case 'H':
      return n * 3_600_000;
    case 'M':
      return n * 60_000;
    case 'S':
      return n * 1000;
    case 'm':
      return n;
    case 'u':
      return n / 1000;
    default:
      return n / 1_000_000;
  }
}

/** grpc-message is percent-encoded (gRPC over HTTP/2: printable ASCII except '%' as is). */
export function encodeGrpcMessage(s: string): string {
  let plain = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return s;
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    out +=
      b < 0x20 || b > 0x7e || b === 0x25
        ? `%${b.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(b);
  }
  return out;
}
