import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseArgs } from '../../../src/config/cli-options.js';
import { EPP_DEFAULTS, EPP_SUMMARY, eppOptions, eppRunFrom } from '../../../src/epp/options.js';

const parse = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  eppRunFrom(parseArgs('epp', EPP_SUMMARY, eppOptions, ['--endpoints-file', 'e.yaml', ...args]), env);

const dir = mkdtempSync(join(tmpdir(), 'epp-options-'));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

const setEnv: string[] = [];
function env(name: string, value: string) {
  process.env[name] = value;
  setEnv.push(name);
}
afterEach(() => {
  for (const n of setEnv.splice(0)) delete process.env[n];
});

describe('epp options', () => {
  it('has one set of defaults: /metrics and admin on loopback, ext_proc on every address', () => {
    expect(EPP_DEFAULTS).toMatchObject({
      grpcPort: 9002,
      grpcBind: '0.0.0.0',
      grpcHealthPort: 9003,
      metricsPort: 9090,
      metricsBind: '127.0.0.1',
      adminPort: 9091,
      adminBind: '127.0.0.1',
      refreshMetricsIntervalMs: 50,
      metricsStalenessMs: 2_000,
      maxRequestBodyBytes: 16 * 1024 * 1024,
      leaseMs: 60_000,
      drainTimeoutMs: 30_000,
      destinationHeader: 'x-gateway-destination-endpoint',
    });
    expect(parse([]).config).toEqual({ ...EPP_DEFAULTS, endpointsFile: 'e.yaml' });
  });

  it('reads every flag from its env variable too, flags winning', () => {
    env('GRPC_PORT', '7000');
    env('LEASE', '5s');
    env('METRICS_BIND', '0.0.0.0');
    const c = parse(['--lease', '7s']).config;
    expect(c).toMatchObject({ grpcPort: 7000, leaseMs: 7_000, metricsBind: '0.0.0.0' });
  });

  it('keeps the GIE flags the GIE chart passes', () => {
    const r = parse(['--pool-group', 'inference.networking.k8s.io', '--zap-encoder', 'console', '--v', '2']);
    expect(r.logFormat).toBe('pretty');
  });

  it('names the flag and its env variable on a bad value', () => {
    expect(() => parse(['--grpc-port', '70000'])).toThrow(
      '--grpc-port (GRPC_PORT): expected a port 0-65535, got "70000"',
    );
    expect(() => parse(['--discovery-lease-ttl', '100ms'])).toThrow(/at least 300ms/);
    expect(() => parse(['--state-pool', 'a b'])).toThrow(/--state-pool/);
  });

  it('reads secrets from files, so argv holds only a path', () => {
    const token = file('token', 'tok-from-file\n');
    const url = file('url', 'redis://:pw@127.0.0.1:6390\n');
    const c = parse(['--admin-token-file', token, '--redis-url-file', url]).config;
    expect(c.adminToken).toBe('tok-from-file');
    expect(c.redisUrl).toBe('redis://:pw@127.0.0.1:6390');
    env('ADMIN_TOKEN_FILE', token);
    expect(parse([]).config.adminToken).toBe('tok-from-file');
  });

  it('refuses a secret given twice or an unreadable file without printing the secret', () => {
    const token = file('token2', 'Zsecret\n');
    expect(() => parse(['--admin-token', 'Zother', '--admin-token-file', token])).toThrow(
      'give --admin-token or --admin-token-file, not both',
    );
    expect(() => parse(['--redis-url-file', join(dir, 'missing')])).toThrow(
      /^--redis-url-file: cannot read .*missing \(ENOENT\)$/,
    );
    expect(() => parse(['--admin-token-file', file('empty', '\n')])).toThrow(/is empty/);
  });
});
