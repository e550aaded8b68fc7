// Scraped signals lag the router: a request dispatched after the last scrape
// is in the router's in-flight charges but not yet in the server's queue. For
// the saturation gate those requests count as waiting,
//   waiting'(e) = waiting(e) + max(0, inFlight(e) - running(e) - waiting(e)),
// so a burst between two scrapes cannot all be admitted on one stale
// reading. Endpoints without signals are left as they are (unknown stays
// unknown: the detector judges them).
import type { EndpointView } from '../scheduling/types.js';

export function withInTransit(views: readonly EndpointView[]): readonly EndpointView[] {
  let out: EndpointView[] | undefined;
  for (let i = 0; i < views.length; i++) {
    const v = views[i]!;
    if (v.waitingQueueSize === undefined || v.runningRequests === undefined) continue;
    const inTransit = v.inFlight - v.runningRequests - v.waitingQueueSize;
    if (inTransit <= 0) continue;
    out ??= views.slice();
    out[i] = { ...v, waitingQueueSize: v.waitingQueueSize + inTransit };
  }
  return out ?? views;
}
