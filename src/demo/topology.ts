// What the demo runs, as data: one entry per process (function, flags,
// the port it serves, how to tell it is ready) plus the endpoints file the
// EPP, the cache-indexer and the PD proxies read. Pure, so it is tested
// without starting anything.
import yaml from 'js-yaml';

export interface DemoOptions {
  gatewayPort: number;
  model: string;
  /** Aggregated model servers (ignored with pd). */
  mocks: number;
  pd: boolean;
  pdGroups: number;
  /** Prefill and decode pods per PD group (default 1 each). */
  pdPrefill?: number;
  pdDecode?: number;
  redisUrl?: string;
  timeScale: number;
  /** Extra flags for every mock-vllm (e.g. latency model). */
  mockArgs: string[];
  logLevel: string;
}

export interface DemoPorts {
  /** One free port per call. */
  next(): Promise<number>;
}

export interface ProcessSpec {
  name: string;
  fn: string;
  args: string[];
  /** The port a person would talk to. */
  port: number;
  /** GET this to know it is ready (2xx). */
  readyUrl: string;
  role: 'gateway' | 'epp' | 'cache-indexer' | 'model-server' | 'pd-leader';
  /** For model servers and leaders: the endpoint id the EPP sees. */
  endpoint?: string;
  note?: string;
}

export interface EndpointEntry {
  name: string;
  address: string;
  port: number;
  labels?: Record<string, string>;
  kvEventsPort?: number;
}

export interface DemoPlan {
  processes: ProcessSpec[];
  endpoints: EndpointEntry[];
  eppPorts: { grpc: number; health: number; metrics: number; admin: number };
  indexerPort: number;
}

const HOST = '127.0.0.1';
const ROLE = 'openfuyao.com/pdRole';
const GROUP = 'openfuyao.com/pdGroupID';

export async function planDemo(
  o: DemoOptions,
  ports: DemoPorts,
  files: { endpointsFile: string; profileFile: string },
): Promise<DemoPlan> {
  const processes: ProcessSpec[] = [];
  const endpoints: EndpointEntry[] = [];

  const mock = async (name: string, role: 'both' | 'prefill' | 'decode', labels?: Record<string, string>) => {
    const port = await ports.next();
    const kv = await ports.next();
    processes.push({
      name,
      fn: 'mock-vllm',
      args: [
        '--host',
        HOST,
        '--port',
        String(port),
        '--model',
        o.model,
        '--role',
        role,
        '--kv-events-port',
        String(kv),
        '--time-scale',
        String(o.timeScale),
        '--log-level',
        o.logLevel,
        ...o.mockArgs,
      ],
      port,
      readyUrl: `http://${HOST}:${port}/health`,
      role: 'model-server',
      endpoint: `${HOST}:${port}`,
      note:
        role === 'both' ? `model server (KV events on ${kv})` : `${role} model server (KV events on ${kv})`,
    });
    endpoints.push({ name, address: HOST, port, kvEventsPort: kv, ...(labels ? { labels } : {}) });
    return port;
  };

  if (o.pd) {
    for (let g = 1; g <= o.pdGroups; g++) {
      const group = `g${g}`;
      const np = o.pdPrefill ?? 1;
      const nd = o.pdDecode ?? 1;
      for (let i = 0; i < np; i++)
        await mock(np > 1 ? `prefill-${group}-${i}` : `prefill-${group}`, 'prefill', {
          [ROLE]: 'prefill',
          [GROUP]: group,
        });
      for (let i = 0; i < nd; i++)
        await mock(nd > 1 ? `decode-${group}-${i}` : `decode-${group}`, 'decode', {
          [ROLE]: 'decode',
          [GROUP]: group,
        });
      const port = await ports.next();
      processes.push({
        name: `pd-proxy-${group}`,
        fn: 'pd-proxy',
        args: [
          '--host',
          HOST,
          '--port',
          String(port),
          '--endpoints-file',
          files.endpointsFile,
          '--group-id',
          group,
          // The demo is for looking inside: answers name the pods that served them.
          '--served-headers',
          '--log-level',
          o.logLevel,
        ],
        port,
        readyUrl: `http://${HOST}:${port}/health`,
        role: 'pd-leader',
        endpoint: `${HOST}:${port}`,
        note: `PD group ${group} leader`,
      });
      endpoints.push({
        name: `pd-proxy-${group}`,
        address: HOST,
        port,
        labels: { [ROLE]: 'leader', [GROUP]: group },
      });
    }
  } else {
    for (let i = 0; i < o.mocks; i++) await mock(`vllm-${i}`, 'both');
  }

  const indexerPort = await ports.next();
  processes.push({
    name: 'cache-indexer',
    fn: 'cache-indexer',
    args: [
      '--host',
      HOST,
      '--port',
      String(indexerPort),
      '--endpoints-file',
      files.endpointsFile,
      '--log-level',
      o.logLevel,
      ...(o.redisUrl ? ['--redis-url', o.redisUrl] : []),
    ],
    port: indexerPort,
    readyUrl: `http://${HOST}:${indexerPort}/healthz`,
    role: 'cache-indexer',
    note: 'KV block index, POST /match_sort',
  });

  const eppPorts = {
    grpc: await ports.next(),
    health: await ports.next(),
    metrics: await ports.next(),
    admin: await ports.next(),
  };
  processes.push({
    name: 'epp',
    fn: 'epp',
    args: [
      '--config-file',
      files.profileFile,
      '--endpoints-file',
      files.endpointsFile,
      '--grpc-port',
      String(eppPorts.grpc),
      '--grpc-health-port',
      String(eppPorts.health),
      '--metrics-port',
      String(eppPorts.metrics),
      '--admin-port',
      String(eppPorts.admin),
      '--grpc-bind',
      HOST,
      '--metrics-bind',
      HOST,
      '--admin-bind',
      HOST,
      '--log-level',
      o.logLevel,
      ...(o.redisUrl ? ['--redis-url', o.redisUrl] : []),
    ],
    port: eppPorts.grpc,
    readyUrl: `http://${HOST}:${eppPorts.admin}/readyz`,
    role: 'epp',
    note: `ext_proc gRPC; admin http://${HOST}:${eppPorts.admin}/state/decisions, metrics :${eppPorts.metrics}`,
  });

  processes.push({
    name: 'gateway-dev',
    fn: 'gateway-dev',
    args: [
      '--host',
      HOST,
      '--port',
      String(o.gatewayPort),
      '--epp',
      `${HOST}:${eppPorts.grpc}`,
      '--log-level',
      o.logLevel,
    ],
    port: o.gatewayPort,
    readyUrl: `http://${HOST}:${o.gatewayPort}/_gateway/healthz`,
    role: 'gateway',
    note: 'the front door: send OpenAI requests here',
  });

  return { processes, endpoints, eppPorts, indexerPort };
}

export function endpointsFileText(endpoints: EndpointEntry[]): string {
  return `# Written by hermes-router demo\n${yaml.dump({ endpoints }, { lineWidth: 200 })}`;
}

/** The order to start in: what others read from first. */
export function startOrder(p: ProcessSpec[]): ProcessSpec[][] {
  const rank: Record<ProcessSpec['role'], number> = {
    'model-server': 0,
    'pd-leader': 1,
    'cache-indexer': 1,
    epp: 2,
    gateway: 3,
  };
  const waves: ProcessSpec[][] = [];
  for (const s of p) (waves[rank[s.role]] ??= []).push(s);
  return waves.filter(Boolean);
}
