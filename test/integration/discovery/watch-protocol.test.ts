// The list/watch protocol: bookmarks, 410 Gone, dropped connections and an
// API server that goes away and comes back.
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, sleep } from '../../helpers/wait.js';
import { LABELS, NS, startHarness, type Harness } from './harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const podWatches = (hh: Harness) => hh.api.requests.filter((r) => r.watch && r.path.endsWith('/pods'));

describe('KubernetesSource watch protocol', () => {
  it('asks for bookmarks and resumes from the bookmark version (no relist)', async () => {
    h = await startHarness({ source: { watchTimeoutSeconds: 1 } });
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    await h.waitFor((eps) => eps.length === 1);
    const first = podWatches(h)[0]!;
    expect(first.query.allowWatchBookmarks).toBe('true');
    expect(first.query.labelSelector).toBe('app=vllm-qwen3');
    // Other objects move the version on; a bookmark tells the client where it is.
    h.api.bumpResourceVersion(50);
    const bookmarkRv = h.api.resourceVersion;
    expect(h.api.sendBookmarks()).toBeGreaterThan(0);
    // History before the bookmark is compacted away: only the bookmark version avoids a 410.
    h.api.compact();
    const lists = h.api.listCount('pods');
    const watchesBefore = podWatches(h).length;
    // The server ends the watch at timeoutSeconds; the client re-watches from the bookmark.
    await eventually(() => podWatches(h!).length > watchesBefore, 3_000, 'pod re-watch');
    expect(podWatches(h).at(-1)!.query.resourceVersion).toBe(bookmarkRv);
    await sleep(100);
    expect(h.api.listCount('pods')).toBe(lists);
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
    await h.waitFor((eps) => eps.length === 2);
  });

  for (const goneMode of ['event', 'http'] as const) {
    it(`410 Gone (${goneMode === 'event' ? 'ERROR event with Status 410' : 'HTTP 410'}): relists and catches missed changes`, async () => {
      h = await startHarness({ api: { goneMode }, source: { watchTimeoutSeconds: 600 } });
      h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
      await h.waitFor((eps) => eps.length === 1);
      // A change the open watch never delivers, then history is compacted past the client's version.
      h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS }, { notify: false });
      h.api.compact();
      const lists = h.api.listCount('pods');
      if (goneMode === 'event') {
        h.api.expireWatches(); // ERROR {code: 410} on the open watches
      } else {
        await sleep(1_050); // a watch that lived >= 1 s ended normally => re-watch from the old version => HTTP 410
        h.api.closeWatches();
      }
      const took = await h.waitFor((eps) => eps.length === 2, 2_000);
      expect(took).toBeLessThan(1_000);
      expect(h.api.listCount('pods')).toBeGreaterThan(lists);
      // 410 is the normal "relist" signal: no error, no back-off.
      expect(h.errors).toEqual([]);
      // Watching again afterwards.
      await eventually(() => h!.api.watchCount('pods') === 1, 1_000, 'pod watch reopened');
      h.pod({ name: 'p2', ip: '10.1.0.3', labels: LABELS });
      await h.waitFor((eps) => eps.length === 3);
    });
  }

  it('dropped watch connection: reconnects, relists, and catches missed changes', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
    await h.waitFor((eps) => eps.length === 2);
    const lists = h.api.listCount('pods');
    expect(h.api.dropWatches()).toBe(3); // pool (both API groups) and pods
    // Changed while the client is disconnected.
    h.api.deletePod(NS, 'p1');
    h.pod({ name: 'p2', ip: '10.1.0.3', labels: LABELS });
    const took = await h.waitFor((eps) => eps.map((e) => e.name).join() === 'p0,p2');
    expect(took).toBeLessThan(1_000);
    expect(h.api.listCount('pods')).toBeGreaterThan(lists);
    expect(h.errors.some((e) => /watch .* failed|closed/.test(e.message))).toBe(true);
    await eventually(() => h!.api.watchCount() === 3, 1_000, 'every watch reopened');
    h.pod({ name: 'p3', ip: '10.1.0.4', labels: LABELS });
    await h.waitFor((eps) => eps.length === 3);
  });

  it('API server down then up again: keeps the last set, then resyncs', async () => {
    h = await startHarness();
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    h.pod({ name: 'p1', ip: '10.1.0.2', labels: LABELS });
    await h.waitFor((eps) => eps.length === 2);
    const published = h.sets.length;
    await h.api.stop();
    await sleep(800); // several failed relists (connection refused) with back-off
    expect(h.sets.length).toBe(published); // nothing published while away: the last set stays in force
    expect(h.errors.some((e) => /list .* failed/.test(e.message))).toBe(true);
    // State changes while the server is away (e.g. a node failed).
    h.api.deletePod(NS, 'p0');
    h.pod({ name: 'p2', ip: '10.1.0.3', labels: LABELS });
    await h.api.start();
    const took = await h.waitFor((eps) => eps.map((e) => e.name).join() === 'p1,p2', 3_000);
    // Back-off is capped at 400 ms in this harness (+20% jitter).
    expect(took).toBeLessThan(1_500);
    await eventually(() => h!.api.watchCount() === 3, 1_000, 'every watch reopened');
    h.pod({ name: 'p3', ip: '10.1.0.4', labels: LABELS });
    await h.waitFor((eps) => eps.length === 3);
  });

  it('a silent connection is detected by the idle timeout and replaced', async () => {
    h = await startHarness({ source: { idleTimeoutMs: 300 } });
    h.pod({ name: 'p0', ip: '10.1.0.1', labels: LABELS });
    await h.waitFor((eps) => eps.length === 1);
    const watches = podWatches(h).length;
    await eventually(() => podWatches(h!).length > watches, 2_000, 'idle watch replaced');
    expect(h.errors.some((e) => /no data for 300 ms/.test(e.message))).toBe(true);
  });
});
