// Registered for every test file (vitest setupFiles): after the file's own
// afterAll hooks, stop whatever it spawned and did not stop. A beforeAll that
// fails half-way (one of three EPPs not ready under load) leaves the others'
// handles unassigned, so the file's afterAll cannot reach them, and they ran
// on for the rest of the suite (two EPPs of shared-scrape.test.ts for 50 min).
import { afterAll } from 'vitest';
import { stopAllSpawned } from './spawn.js';

afterAll(async () => {
  await stopAllSpawned();
}, 30_000);
