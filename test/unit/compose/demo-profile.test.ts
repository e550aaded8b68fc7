// The demo (and the end-to-end tests) run every example profile on
// loopback through localizeProfile: each must stay a valid config, with the
// cache-indexer parameters pointing at the local indexer.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../../src/config/endpoint-picker-config.js';
import { isPdProfile, localizeProfile, usesCacheIndexer } from '../../../src/demo/profile.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import { REPO_ROOT } from '../../helpers/spawn.js';

const dir = join(REPO_ROOT, 'examples', 'profiles');
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

describe('localizeProfile', () => {
  it.each(files)('%s stays valid and points at the local indexer', (f) => {
    const text = readFileSync(join(dir, f), 'utf8');
    const local = localizeProfile(text, { host: '127.0.0.1', port: 40123, timeoutNs: 100_000_000 });
    expect(() => loadConfigText(local, `${f} (localized)`, builtinRegistry())).not.toThrow();
    if (usesCacheIndexer(text)) {
      expect(local).not.toMatch(/cache-indexer-service/);
      for (const m of local.matchAll(/kvCacheManagerIP:\s*(\S+)/g)) expect(m[1]).toBe('127.0.0.1');
      for (const m of local.matchAll(/kvCacheManagerPort:\s*(\S+)/g)) expect(m[1]).toBe('40123');
      for (const m of local.matchAll(/kvCacheManagerTimeout:\s*(\S+)/g)) expect(m[1]).toBe('100000000');
    } else {
      expect(local).toBe(text);
    }
  });

  it('rewrites quoted values and leaves comments alone', () => {
    const t =
      'kvCacheManagerIP: "cache-indexer-service"   # where\nkvCacheManagerPort: 8080\nkvCacheManagerTimeout: 5000000000\n';
    expect(localizeProfile(t, { host: '127.0.0.1', port: 9, timeoutNs: 7 })).toBe(
      'kvCacheManagerIP: 127.0.0.1   # where\nkvCacheManagerPort: 9\nkvCacheManagerTimeout: 7\n',
    );
  });

  it('knows which examples need a PD topology', () => {
    const pd = files.filter((f) => isPdProfile(readFileSync(join(dir, f), 'utf8'))).sort();
    expect(pd).toEqual(['epp-pd-bucket.yaml', 'epp-pd-kv-cache-aware.yaml', 'epp-random-pd-bucket.yaml']);
  });
});
