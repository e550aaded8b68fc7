// The ext_proc liveness flags: defaults, parsing, and the one combination
// that would close every healthy connection.
import { describe, expect, it } from 'vitest';
import { parseArgs } from '../../../src/config/cli-options.js';
import { EPP_SUMMARY, eppOptions, eppRunFrom } from '../../../src/epp/options.js';

const flags = (f: Record<string, string>) =>
  eppRunFrom(
    parseArgs('epp', EPP_SUMMARY, eppOptions, [
      '--endpoints-file',
      '/dev/null',
      ...Object.entries(f).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, v]),
    ]),
    {},
  ).config;

describe('ext_proc liveness flags', () => {
  it('default to a 30 s keepalive, a 10 s ping deadline and a 10 min stream idle timeout', () => {
    const c = flags({});
    expect([c.grpcKeepaliveTimeMs, c.grpcKeepaliveTimeoutMs, c.streamIdleTimeoutMs]).toEqual([
      30_000, 10_000, 600_000,
    ]);
  });

  it('parse durations, 0 turning either off', () => {
    const c = flags({ grpcKeepaliveTime: '0', streamIdleTimeout: '90s', grpcKeepaliveTimeout: '0' });
    expect([c.grpcKeepaliveTimeMs, c.streamIdleTimeoutMs]).toEqual([0, 90_000]);
  });

  it('refuse a ping deadline too short to be answered', () => {
    expect(() => flags({ grpcKeepaliveTimeout: '0' })).toThrow(/--grpc-keepalive-timeout must be at least/);
    expect(() => flags({ streamIdleTimeout: 'soon' })).toThrow(/--stream-idle-timeout.*expected a duration/);
  });
});
