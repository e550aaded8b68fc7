import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { staleReason } from '../../helpers/fresh-build.js';

function tree(): { root: string; touch(path: string, atSec: number): void } {
  const root = mkdtempSync(join(tmpdir(), 'fresh-build-'));
  return {
    root,
    touch(path, atSec) {
      const p = join(root, path);
      mkdirSync(join(p, '..'), { recursive: true });
      writeFileSync(p, '');
      utimesSync(p, atSec, atSec);
    },
  };
}

describe('fresh build check (process-level tests run dist/)', () => {
  it('calls dist/ stale when it is missing or a compiled source is newer', () => {
    const t = tree();
    t.touch('src/epp/build.ts', 1_000);
    expect(staleReason(t.root)).toMatch(/missing/);
    t.touch('dist/functions/cli/main.js', 2_000);
    expect(staleReason(t.root)).toBeUndefined();
    t.touch('test/helpers/epp.ts', 3_000);
    expect(staleReason(t.root)).toBe('test/helpers changed after the last build');
    t.touch('dist/functions/cli/main.js', 4_000);
    t.touch('functions/epp/main.ts', 5_000);
    expect(staleReason(t.root)).toBe('functions changed after the last build');
  });

  it('ignores what the build does not compile (tests, docs)', () => {
    const t = tree();
    t.touch('dist/functions/cli/main.js', 2_000);
    t.touch('test/unit/x.test.ts', 3_000);
    t.touch('src/README.md', 3_000);
    expect(staleReason(t.root)).toBeUndefined();
  });
});
