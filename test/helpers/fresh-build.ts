// Process-level tests run the built dist/ (bin/hermes-router.js). So that
// `npx vitest run <file>` after an edit never tests old code, vitest's global
// setup rebuilds when any compiled source is newer than the build. Sources:
// what tsconfig.build.json compiles (src/, functions/, test/helpers, test/bench,
// test/soak) and the files that shape the build.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SOURCE_DIRS = ['src', 'functions', 'test/helpers', 'test/bench', 'test/soak'];
const SOURCE_FILES = ['tsconfig.json', 'tsconfig.build.json', 'package.json'];
/** One file every build writes (`npm run build` starts from an empty dist/). */
const BUILT = 'dist/functions/cli/main.js';

/** Newest modification time of a file, or of the .ts files under a folder. */
function newestMtimeMs(path: string): number {
  if (!existsSync(path)) return 0;
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let max = 0;
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    if (e.isDirectory()) max = Math.max(max, newestMtimeMs(p));
    else if (e.name.endsWith('.ts')) max = Math.max(max, statSync(p).mtimeMs);
  }
  return max;
}

/** Why dist/ is stale (undefined when it is fresh). */
export function staleReason(root: string): string | undefined {
  const built = join(root, BUILT);
  if (!existsSync(built)) return `${BUILT} is missing`;
  const builtAt = statSync(built).mtimeMs;
  for (const p of [...SOURCE_DIRS, ...SOURCE_FILES]) {
    const t = newestMtimeMs(join(root, p));
    if (t > builtAt) return `${p} changed after the last build`;
  }
  return undefined;
}

/** Rebuilds dist/ when it is stale; returns what it did, for the log. */
export function ensureFreshBuild(root: string): string {
  const why = staleReason(root);
  if (!why) return 'dist/ is up to date';
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'inherit' });
  return `rebuilt dist/ (${why})`;
}
