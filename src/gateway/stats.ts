// Counters the dev gateway keeps about its own traffic: what the demo
// prints when the EPP's admin API is not reachable, and what tests read.
export interface GatewayStatsSnapshot {
  requests: number;
  /** Requests served per endpoint (the endpoint that actually answered). */
  routed: Record<string, number>;
  fallbacks: number;
  immediate: Record<string, number>;
  upstreamFailures: Record<string, number>;
  streamFailures: number;
  eppFailures: number;
  noDestination: number;
}

export class GatewayStats {
  private s: GatewayStatsSnapshot = {
    requests: 0,
    routed: {},
    fallbacks: 0,
    immediate: {},
    upstreamFailures: {},
    streamFailures: 0,
    eppFailures: 0,
    noDestination: 0,
  };

  request(): void {
    this.s.requests++;
  }
  routed(endpoint: string, viaFallback: boolean): void {
    this.s.routed[endpoint] = (this.s.routed[endpoint] ?? 0) + 1;
    if (viaFallback) this.s.fallbacks++;
  }
  immediate(status: number): void {
    this.s.immediate[status] = (this.s.immediate[status] ?? 0) + 1;
  }
  upstreamFailure(endpoint: string): void {
    this.s.upstreamFailures[endpoint] = (this.s.upstreamFailures[endpoint] ?? 0) + 1;
  }
  streamFailure(_endpoint: string): void {
    this.s.streamFailures++;
  }
  eppFailure(): void {
    this.s.eppFailures++;
  }
  noDestination(): void {
    this.s.noDestination++;
  }
  snapshot(): GatewayStatsSnapshot {
    return structuredClone(this.s);
  }
}
