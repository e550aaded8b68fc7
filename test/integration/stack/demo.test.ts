// `hermes-router demo` as a user runs it: start, curl the printed command
// once, Ctrl-C (SIGINT), and nothing it started may survive. Also: a child
// that crashes takes the whole demo down cleanly (exit 1, no leftovers).
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';
import { pidAlive, spawnFn, stopAllSpawned } from '../../helpers/spawn.js';

function pidsOf(output: string): number[] {
  return [...output.matchAll(/ pid (\d+) /g)].map((m) => Number(m[1]));
}

async function allGone(pids: number[], timeoutMs = 3_000): Promise<number[]> {
  const end = Date.now() + timeoutMs;
  let alive = pids.filter(pidAlive);
  while (alive.length && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    alive = alive.filter(pidAlive);
  }
  return alive;
}

describe('hermes-router demo', () => {
  afterAll(async () => {
    await stopAllSpawned();
  });

  it('serves the printed curl and leaves no process behind on Ctrl-C', async () => {
    const port = await freePort();
    const demo = await spawnFn('demo', [
      '--port',
      String(port),
      '--time-scale',
      '10',
      '--progress-interval',
      '300ms',
    ]);
    await demo.waitForOutput('Ctrl-C stops everything', 45_000);
    const out = demo.output();
    const pids = pidsOf(out);
    expect(pids).toHaveLength(6);
    expect(out).toContain(`curl -s http://127.0.0.1:${port}/v1/chat/completions`);

    // The printed command, as a user would paste it.
    const data = /-d '(\{"model":"mock-model","messages".*?\})'/.exec(out)![1]!;
    const r = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: data,
    });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { object: string }).object).toBe('chat.completion');
    await demo.waitForOutput(/requests 1: vllm-\d=1/, 5_000);

    demo.child.kill('SIGINT');
    const code = await demo.exited;
    expect(code).toBe(0);
    const final = demo.output();
    expect(final).toContain('requests through the gateway: 1');
    expect(final).toMatch(/EPP decisions \(last 1\)/);
    expect(final).toContain('all processes stopped');
    expect(await allGone(pids)).toEqual([]);
  }, 60_000);

  it('stops everything and exits 1 when a child crashes', async () => {
    const port = await freePort();
    const demo = await spawnFn('demo', ['--port', String(port), '--time-scale', '10']);
    await demo.waitForOutput('Ctrl-C stops everything', 45_000);
    const pids = pidsOf(demo.output());
    // vllm-0 is the first process listed.
    process.kill(pids[0]!, 'SIGKILL');
    expect(await demo.exited).toBe(1);
    expect(demo.output()).toMatch(/vllm-0 exited unexpectedly/);
    expect(await allGone(pids)).toEqual([]);
    // After a crash the demo keeps its logs for the user; the test cleans up.
    const kept = /logs kept in (\S+)/.exec(demo.output())?.[1];
    expect(kept).toBeDefined();
    rmSync(kept!, { recursive: true, force: true });
  }, 60_000);
});
