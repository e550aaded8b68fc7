// grpc.health.v1 on its own port (GIE: --grpc-health-port 9003). Every
// service name GIE's probes and gateways use reports SERVING only while the
// EPP is ready; `liveness` is SERVING while the process runs.
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import type * as grpc from '@grpc/grpc-js';
import { EXT_PROC_SERVICE } from '../common/wire-headers.js';

/** Names that follow readiness: '' (overall), GIE's chart probe, ext_proc itself, HA `readiness`. */
export const READINESS_SERVICES = ['', 'inference-extension', EXT_PROC_SERVICE, 'readiness'];

export class HealthService {
  private readonly impl = new HealthImplementation({ liveness: 'SERVING' });

  constructor() {
    this.setReady(false);
  }

  setReady(ready: boolean): void {
    const status: ServingStatus = ready ? 'SERVING' : 'NOT_SERVING';
    for (const s of READINESS_SERVICES) this.impl.setStatus(s, status);
  }

  addTo(server: grpc.Server): void {
    this.impl.addToServer(server as unknown as Parameters<HealthImplementation['addToServer']>[0]);
  }
}
