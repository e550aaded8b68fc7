// The lean transport's gRPC message framing (src/extproc/grpc-framing.ts):
// prefixes split across DATA chunks, several messages in one chunk, one
// message over many, the receive limit and the compressed flag.
import { describe, expect, it } from 'vitest';
import {
  encodeGrpcMessage,
  frameMessage,
  GrpcDeframer,
  GrpcStatus,
  parseGrpcTimeout,
} from '../../../src/extproc/grpc-framing.js';

function collect(max = 1 << 20, encoding?: string) {
  const got: Buffer[] = [];
  const d = new GrpcDeframer(max, (b) => got.push(Buffer.from(b)), encoding);
  return { d, got };
}

const msgs = [Buffer.from('hello'), Buffer.alloc(0), Buffer.alloc(70_000, 7), Buffer.from('x')];
const wire = Buffer.concat(msgs.map((m) => frameMessage(m)));

describe('GrpcDeframer', () => {
  it('several messages in one chunk, an empty one among them', () => {
    const { d, got } = collect();
    expect(d.push(wire)).toBeUndefined();
    expect(got).toEqual(msgs);
    expect(d.partial).toBe(false);
  });

  it('every cut of the stream gives the same messages (prefix split, payload split)', () => {
    for (const size of [1, 2, 3, 4, 5, 6, 7, 11, 4096, 65_536]) {
      const { d, got } = collect();
      for (let o = 0; o < wire.length; o += size) expect(d.push(wire.subarray(o, o + size))).toBeUndefined();
      expect(got).toEqual(msgs);
    }
  });

  it('a prefix cut at each of its bytes, across two chunks', () => {
    const one = frameMessage(Buffer.from('abcdef'));
    for (let cut = 1; cut < 5; cut++) {
      const { d, got } = collect();
      d.push(one.subarray(0, cut));
      expect(got).toHaveLength(0);
      expect(d.partial).toBe(true);
      d.push(one.subarray(cut));
      expect(got).toEqual([Buffer.from('abcdef')]);
      expect(d.partial).toBe(false);
    }
  });

  it('a message whole in its chunk is a view of the chunk (no copy); one spread over chunks is copied once', () => {
    const chunk = Buffer.concat([frameMessage(Buffer.from('view')), frameMessage(Buffer.from('split'))]);
    const views: Buffer[] = [];
    const d = new GrpcDeframer(1024, (b) => views.push(b));
    d.push(chunk.subarray(0, chunk.length - 2));
    d.push(chunk.subarray(chunk.length - 2));
    expect(views[1]!.toString()).toBe('split');
    // Writing the chunk shows through the view, not through the copy.
    chunk.fill(0x41);
    expect(views[0]!.toString()).toBe('AAAA');
    expect(views[1]!.toString()).toBe('split');
  });

  it('a message over the limit: RESOURCE_EXHAUSTED in grpc-js wording, at its prefix, and nothing after', () => {
    const { d, got } = collect(10);
    const err = d.push(Buffer.concat([frameMessage(Buffer.from('ok')), frameMessage(Buffer.alloc(11))]));
    expect(err).toEqual({
      code: GrpcStatus.RESOURCE_EXHAUSTED,
      details: 'Received message larger than max (11 vs. 10)',
    });
    expect(got).toEqual([Buffer.from('ok')]);
    expect(d.push(frameMessage(Buffer.from('later')))).toBeUndefined();
    expect(got).toHaveLength(1);
    // Exactly at the limit is fine.
    const at = collect(10);
    expect(at.d.push(frameMessage(Buffer.alloc(10)))).toBeUndefined();
    expect(at.got).toHaveLength(1);
  });

  it('the compressed flag: UNIMPLEMENTED with an encoding, INTERNAL without one; any other flag INTERNAL', () => {
    const compressed = frameMessage(Buffer.from('zz'));
    compressed[0] = 1;
    expect(collect(1024, 'gzip').d.push(compressed)?.code).toBe(GrpcStatus.UNIMPLEMENTED);
    expect(collect(1024, 'gzip').d.push(compressed)?.details).toContain('gzip');
    expect(collect(1024).d.push(compressed)?.code).toBe(GrpcStatus.INTERNAL);
    expect(collect(1024, 'identity').d.push(compressed)?.code).toBe(GrpcStatus.INTERNAL);
    const odd = frameMessage(Buffer.from('zz'));
    odd[0] = 2;
    expect(collect().d.push(odd)?.code).toBe(GrpcStatus.INTERNAL);
  });
});

describe('frameMessage, grpc-timeout, grpc-message', () => {
  it('frames with a zero flag and a big-endian length', () => {
    expect(frameMessage(Buffer.from('abc')).toString('hex')).toBe('0000000003616263');
  });

  it('parses every grpc-timeout unit and refuses malformed values', () => {
    expect(parseGrpcTimeout('2H')).toBe(7_200_000);
    expect(parseGrpcTimeout('3M')).toBe(180_000);
    expect(parseGrpcTimeout('10S')).toBe(10_000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('5000u')).toBe(5);
    expect(parseGrpcTimeout('2000000n')).toBe(2);
    expect(parseGrpcTimeout('123456789S')).toBeUndefined();
    expect(parseGrpcTimeout('10s')).toBeUndefined();
    expect(parseGrpcTimeout('')).toBeUndefined();
  });

  it('percent-encodes grpc-message outside printable ASCII and "%"', () => {
    expect(encodeGrpcMessage('plain text')).toBe('plain text');
    expect(encodeGrpcMessage('100% é\n')).toBe('100%25 %C3%A9%0A');
    expect(decodeURIComponent(encodeGrpcMessage('100% é\n'))).toBe('100% é\n');
  });
});
