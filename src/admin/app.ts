// The EPP's admin HTTP API (hono): liveness/readiness for people and probes,
// and read-only views of the shared state for `hermes-router state` and
// debugging. Bound to 127.0.0.1 unless told otherwise; /state/* can require
// a bearer token.
import { Hono } from 'hono';
import { bearerAuth } from 'hono/bearer-auth';
import { HTTPException } from 'hono/http-exception';
import type { StateStore } from '../state/store.js';
import type { FlowState } from '../flow/flow-controller.js';

export interface AdminDeps {
  store: StateStore;
  /** Why the EPP is not ready yet; empty when ready. */
  notReadyReasons(): string[];
  /** Signals older than this are reported stale. */
  stalenessMs: number;
  token?: string;
  now?: () => number;
  /** Extra fields for /readyz (open streams, state backend...). */
  details?(): Record<string, unknown>;
  /** The InferenceObjectives in force, for /state/objectives. */
  objectives?(): Array<{ name: string; priority: number }>;
  /** This replica's flow-control queue (undefined: no flowControl section), for /state/queues. */
  flow?(): FlowState | undefined;
}

export function buildAdminApp(deps: AdminDeps): Hono {
  const app = new Hono();
  const now = deps.now ?? Date.now;

  app.get('/healthz', (c) => c.json({ status: 'ok' }));
  app.get('/readyz', (c) => {
    const reasons = deps.notReadyReasons();
    const body = { ready: reasons.length === 0, reasons, ...(deps.details?.() ?? {}) };
    return c.json(body, reasons.length === 0 ? 200 : 503);
  });

  if (deps.token) app.use('/state/*', bearerAuth({ token: deps.token }));

  app.get('/state/endpoints', async (c) => {
    const snap = await deps.store.readSnapshot({});
    const t = now();
    return c.json({
      backend: deps.store.health().backend,
      endpoints: snap.endpoints.map((e) => {
        const s = snap.signals.get(e.id);
        const ageMs = s ? t - s.updatedAtMs : null;
        return {
          id: e.id,
          name: e.name,
          address: e.address,
          port: e.port,
          labels: e.labels,
          inFlight: snap.inFlight.get(e.id) ?? 0,
          pendingPrefillTokens: snap.pendingPrefillTokens.get(e.id) ?? 0,
          signals: s
            ? {
                waitingQueueSize: s.waitingQueueSize ?? null,
                runningRequests: s.runningRequests ?? null,
                kvCacheUsage: s.kvCacheUsage ?? null,
                ageMs,
                stale: ageMs! > deps.stalenessMs,
              }
            : null,
        };
      }),
    });
  });

  app.get('/state/objectives', (c) => c.json({ objectives: deps.objectives?.() ?? [] }));

  // Queues are per replica: this is the EPP answering, not the pool.
  app.get('/state/queues', (c) => {
    const s = deps.flow?.();
    return c.json(s ? { enabled: true, ...s } : { enabled: false });
  });

  app.get('/state/loads', async (c) => {
    const snap = await deps.store.readSnapshot({ bucketLoads: true });
    return c.json({
      poolEvent: snap.poolEvent,
      inFlight: Object.fromEntries(snap.inFlight),
      bucketLoads: Object.fromEntries(snap.bucketLoads),
    });
  });

  app.get('/state/decisions', async (c) => {
    const raw = Number(c.req.query('limit') ?? 50);
    const limit = Number.isInteger(raw) && raw > 0 ? Math.min(raw, 1000) : 50;
    return c.json({ decisions: await deps.store.recentDecisions(limit) });
  });

  app.onError((err, c) =>
    err instanceof HTTPException ? err.getResponse() : c.json({ error: err.message }, 500),
  );
  return app;
}
