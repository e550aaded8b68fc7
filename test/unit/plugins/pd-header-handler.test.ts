import { describe, expect, it } from 'vitest';
import { DECODE_HEADER, PREFILL_HEADER } from '../../../src/common/wire-headers.js';
import { pdHeaderHandler } from '../../../src/plugins/pd-header-handler.js';
import type { SchedulingResult } from '../../../src/scheduling/types.js';
import { build, ctx, pod, view } from './fixtures.js';

describe('pd-header-handler', () => {
  it('names the chosen prefill and decode pods as ip:port', () => {
    const leader = pod('l', 'leader', 'g', { address: '10.1.0.1', port: 8000 });
    const prefill = pod('p', 'prefill', 'g', { address: '10.1.0.2', port: 8100 });
    const decode = pod('d', 'decode', 'g', { address: '10.1.0.3', port: 8200 });
    const result = { primary: leader, pd: { groupId: 'g', leader, prefill, decode } } as SchedulingResult;
    expect(build(pdHeaderHandler).headers!(ctx(), result)).toEqual({
      'x-openfuyao-prefill-pod-address-port': '10.1.0.2:8100',
      'x-openfuyao-decode-pod-address-port': '10.1.0.3:8200',
    });
  });

  it('brackets IPv6 addresses', () => {
    const leader = pod('l', 'leader', 'g', { address: 'fd00::1' });
    const prefill = pod('p', 'prefill', 'g', { address: 'fd00::2', port: 8001 });
    const decode = pod('d', 'decode', 'g', { address: '2001:db8::3', port: 8002 });
    const h = build(pdHeaderHandler).headers!(ctx(), {
      primary: leader,
      pd: { groupId: 'g', leader, prefill, decode },
    } as SchedulingResult);
    expect(h[PREFILL_HEADER]).toBe('[fd00::2]:8001');
    expect(h[DECODE_HEADER]).toBe('[2001:db8::3]:8002');
  });

  it('adds nothing to an aggregated result and takes no parameters', () => {
    expect(build(pdHeaderHandler).headers!(ctx(), { primary: view('a') } as SchedulingResult)).toEqual({});
    expect(pdHeaderHandler.parameters.safeParse({ header: 'x' }).success).toBe(false);
  });
});
