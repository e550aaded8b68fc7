// Scraped signals lag the router: a request dispatched after the last scrape
// is in the router's in-flight charges but not yet in the server's queue. For
// the saturation gate those requests count as waiting,
//   waiting'(e) = waiting(e) + max(0, inFlight(e) - running(e) - waiting(e)),
// so a burst between two scrapes cannot all be admitted on one stale
// reading. Endpoints without signals are left as they are (unknown stays
// unknown: the detector judges them).
import { IN_FLIGHT_WAITING, waitingOf } from '../plugins/common.js';
import type { EndpointView } from '../scheduling/types.js';

export function withInTransit(views: readonly EndpointView[]): readonly EndpointView[] {
  let out: EndpointView[] | undefined;
  for (let i = 0; i < views.length; i++) {
    const v = views[i]!;
    // The same estimate the KV-aware scorers queue on (plugins/common.ts).
    const waiting = waitingOf(v, IN_FLIGHT_WAITING);
    if (waiting === undefined || waiting <= v.waitingQueueSize!) continue;
    out ??= views.slice();
    out[i] = { ...v, waitingQueueSize: waiting };
  }
  return out ?? views;
}
