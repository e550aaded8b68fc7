// An ExtProcService over a memory store holding one endpoint and the default
// profile, as the in-process ext_proc tests build it; `extra` overrides the
// service options (e.g. streamIdleTimeoutMs).
import { DEFAULT_CONFIG_TEXT, loadConfigText } from '../../src/config/endpoint-picker-config.js';
import { Director } from '../../src/director/director.js';
import { ExtProcService, type ExtProcServiceOptions } from '../../src/extproc/server.js';
import { silentLogger } from '../../src/observability/logger.js';
import { builtinRegistry } from '../../src/plugins/index.js';
import type { Endpoint } from '../../src/scheduling/types.js';
import { MemoryStateStore } from '../../src/state/memory-store.js';

export const SERVICE_ENDPOINT: Endpoint = {
  id: '10.0.0.1:8000',
  name: 'a',
  address: '10.0.0.1',
  port: 8000,
  labels: {},
};

export async function memoryExtProcService(extra: Partial<ExtProcServiceOptions> = {}) {
  const store = new MemoryStateStore();
  await store.replaceEndpoints([SERVICE_ENDPOINT]);
  const director = new Director({
    store,
    profile: loadConfigText(DEFAULT_CONFIG_TEXT, 'default', builtinRegistry()).profile,
  });
  const service = new ExtProcService({
    director,
    logger: silentLogger(),
    destinationHeader: 'x-gateway-destination-endpoint',
    metadataNamespace: 'envoy.lb',
    maxBodyBytes: 1 << 20,
    defaultRequestBodyMode: 'FULL_DUPLEX_STREAMED',
    defaultResponseBodyMode: 'FULL_DUPLEX_STREAMED',
    observer: {},
    renewIntervalMs: 100,
    ...extra,
  });
  /** The endpoint's in-flight count in the store. */
  const inFlight = async () => (await store.readSnapshot({})).inFlight.get(SERVICE_ENDPOINT.id) ?? 0;
  return { store, director, service, inFlight };
}
