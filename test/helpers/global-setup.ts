// vitest globalSetup: runs once per `vitest run`, before any worker starts,
// so a stale dist/ is rebuilt once and never by two workers at a time.
import { resolve } from 'node:path';
import { ensureFreshBuild } from './fresh-build.js';

export default function setup(): void {
  const what = ensureFreshBuild(resolve(import.meta.dirname, '../..'));
  if (what.startsWith('rebuilt')) process.stderr.write(`[global-setup] ${what}\n`);
}
