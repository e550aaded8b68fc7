// docker-compose.yml and deploy/envoy/envoy.yaml cannot be run here (no
// Docker), so this keeps them honest: every service, port, dependency,
// mounted file, command flag and Envoy cluster reference must resolve.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from '../../../src/config/endpoint-picker-config.js';
import { parseEndpointsFile } from '../../../src/discovery/endpoints-file.js';
import { builtinRegistry } from '../../../src/plugins/index.js';
import { CLI, REPO_ROOT } from '../../helpers/spawn.js';

type Any = Record<string, unknown>;
interface Service {
  image?: string;
  build?: string;
  command?: string[];
  ports?: string[];
  depends_on?: string[] | Record<string, unknown>;
  volumes?: string[];
  networks?: string[] | Record<string, { ipv4_address?: string } | null>;
}

const compose = yaml.load(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8')) as {
  services: Record<string, Service>;
  networks: Any;
};
const envoy = yaml.load(readFileSync(join(REPO_ROOT, 'deploy/envoy/envoy.yaml'), 'utf8')) as Any;
const services = compose.services;
const ours = Object.entries(services).filter(([, s]) => s.image?.startsWith('hermes-router'));

/** Flags a `hermes-router <fn> --help` lists. */
const helpCache = new Map<string, Set<string>>();
function flagsOf(fn: string): Set<string> {
  let flags = helpCache.get(fn);
  if (!flags) {
    const r = spawnSync(process.execPath, [CLI, fn, '--help'], { encoding: 'utf8', timeout: 20_000 });
    if (r.status !== 0) throw new Error(`hermes-router ${fn} --help failed (${r.status}): ${r.stderr}`);
    flags = new Set(r.stdout.match(/--[a-z0-9][a-z0-9-]*/g) ?? []);
    helpCache.set(fn, flags);
  }
  return flags;
}

/** `--name=value` / `--name value` -> value of a flag in a command list. */
function flagValue(cmd: string[], name: string): string | undefined {
  for (let i = 0; i < cmd.length; i++) {
    const a = cmd[i]!;
    if (a.startsWith(`${name}=`)) return a.slice(name.length + 1);
    if (a === name) return cmd[i + 1];
  }
  return undefined;
}

function dependsOn(s: Service): string[] {
  if (!s.depends_on) return [];
  return Array.isArray(s.depends_on) ? s.depends_on : Object.keys(s.depends_on);
}

function containerPorts(s: Service): number[] {
  return (s.ports ?? []).map((p) => Number(String(p).split(':').at(-1)!.split('/')[0]));
}

/** Host file behind a container path, through the service's bind mounts. */
function hostPathOf(s: Service, containerPath: string): string | undefined {
  for (const v of s.volumes ?? []) {
    const [host, target] = v.split(':') as [string, string];
    if (containerPath === target) return join(REPO_ROOT, host);
    if (containerPath.startsWith(`${target}/`))
      return join(REPO_ROOT, host, containerPath.slice(target.length + 1));
  }
  return undefined;
}

function findAll(node: unknown, pred: (n: Any) => boolean, out: Any[] = []): Any[] {
  if (Array.isArray(node)) for (const x of node) findAll(x, pred, out);
  else if (node && typeof node === 'object') {
    if (pred(node as Any)) out.push(node as Any);
    for (const v of Object.values(node)) findAll(v, pred, out);
  }
  return out;
}

const clusters = ((envoy.static_resources as Any).clusters as Any[]).map((c) => c as Any);
const clusterByName = new Map(clusters.map((c) => [c.name as string, c]));

describe('docker-compose.yml', () => {
  beforeAll(() => {
    expect(existsSync(join(REPO_ROOT, 'dist/functions/cli/main.js')), 'run `npm run build` first').toBe(true);
  });

  it('has the stack the docs promise', () => {
    const names = Object.keys(services);
    expect(names).toEqual(
      expect.arrayContaining([
        'envoy',
        'redis',
        'epp-1',
        'epp-2',
        'cache-indexer',
        'mock-vllm-0',
        'mock-vllm-1',
        'mock-vllm-2',
      ]),
    );
    expect(services.envoy!.image).toMatch(/^envoyproxy\/envoy:/);
    expect(ours.filter(([, s]) => s.command?.[0] === 'epp')).toHaveLength(2);
    expect(ours.filter(([, s]) => s.command?.[0] === 'mock-vllm')).toHaveLength(3);
  });

  it('builds its own image from the Dockerfile, which runs the CLI as a non-root user', () => {
    for (const [, s] of ours) expect(s.build).toBe('.');
    const df = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    expect(df).toMatch(/^FROM node:20-slim/m);
    expect(df).toMatch(/RUN npm ci/);
    expect(df).toMatch(/npm run build/);
    expect(df).toMatch(/^USER (?!root)\S+/m);
    expect(df).toMatch(/ENTRYPOINT \["node", "bin\/hermes-router.js"\]/);
    // Everything the Dockerfile copies exists and is not excluded from the build context.
    const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const m of df.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)) {
      for (const src of m[1]!.split(/\s+/)) {
        expect(existsSync(join(REPO_ROOT, src)), `COPY ${src}`).toBe(true);
        const excluded = ignore.some(
          (p) => p === src || (p === `${src.split('/')[0]}/**` && !ignore.includes(`!${src}/**`)),
        );
        expect(excluded, `${src} is excluded by .dockerignore`).toBe(false);
      }
    }
  });

  it('depends only on services that exist', () => {
    for (const [name, s] of Object.entries(services)) {
      for (const d of dependsOn(s)) expect(Object.keys(services), `${name} depends_on ${d}`).toContain(d);
    }
  });

  it('publishes each host port once', () => {
    const host = Object.values(services).flatMap((s) => (s.ports ?? []).map((p) => String(p).split(':')[0]));
    expect(new Set(host).size).toBe(host.length);
  });

  it('runs only functions and flags the CLI accepts', () => {
    for (const [name, s] of ours) {
      const [fn, ...args] = s.command ?? [];
      expect(fn, `${name} has a command`).toBeTruthy();
      const known = flagsOf(fn!);
      for (const a of args) {
        if (!a.startsWith('--')) continue;
        const flag = a.split('=')[0]!;
        expect(known.has(flag), `${name}: hermes-router ${fn} does not accept ${flag}`).toBe(true);
      }
    }
  });

  it('mounts every file a command names', () => {
    for (const [name, s] of ours) {
      for (const flag of ['--config-file', '--endpoints-file']) {
        const p = flagValue(s.command ?? [], flag);
        if (!p) continue;
        const host = hostPathOf(s, p);
        expect(host, `${name} ${flag} ${p} is not under a mounted volume`).toBeDefined();
        expect(existsSync(host!), `${name} ${flag}: ${host} missing`).toBe(true);
      }
    }
  });

  it('points the EPP at a valid profile whose cache-indexer is the compose service', () => {
    for (const [name, s] of ours.filter(([, s]) => s.command?.[0] === 'epp')) {
      const cmd = s.command!;
      expect(flagValue(cmd, '--redis-url'), `${name} shares state through Redis`).toMatch(
        /^redis:\/\/redis:6379$/,
      );
      const file = hostPathOf(s, flagValue(cmd, '--config-file')!)!;
      const cfg = loadConfigFile(file, builtinRegistry());
      expect(cfg).toBeTruthy();
      const text = readFileSync(file, 'utf8');
      const ip = /kvCacheManagerIP:\s*(\S+)/.exec(text)?.[1];
      const port = Number(/kvCacheManagerPort:\s*(\d+)/.exec(text)?.[1]);
      if (ip) {
        expect(Object.keys(services)).toContain(ip);
        expect(Number(flagValue(services[ip]!.command!, '--port'))).toBe(port);
      }
      for (const d of dependsOn(s)) expect(Object.keys(services)).toContain(d);
    }
  });

  it('lists in the endpoints file exactly the mock-vllm servers, at their fixed IPs and ports', () => {
    const epp = ours.find(([, s]) => s.command?.[0] === 'epp')![1];
    const file = hostPathOf(epp, flagValue(epp.command!, '--endpoints-file')!)!;
    const endpoints = parseEndpointsFile(readFileSync(file, 'utf8'), file);
    const mocks = ours.filter(([, s]) => s.command?.[0] === 'mock-vllm');
    expect(endpoints).toHaveLength(mocks.length);
    const subnet = ((compose.networks.hermes as Any).ipam as { config: Array<{ subnet: string }> }).config[0]!
      .subnet;
    const prefix = subnet.split('.').slice(0, 3).join('.') + '.';
    for (const [name, s] of mocks) {
      const nets = s.networks as Record<string, { ipv4_address?: string }>;
      const ip = nets.hermes?.ipv4_address;
      expect(ip, `${name} has a fixed IP (ORIGINAL_DST needs one)`).toBeDefined();
      expect(ip!.startsWith(prefix)).toBe(true);
      const ep = endpoints.find((e) => e.address === ip);
      expect(ep, `${name} (${ip}) is in the endpoints file`).toBeDefined();
      expect(ep!.port).toBe(Number(flagValue(s.command!, '--port')));
      expect(ep!.kvEventsPort ?? 5557).toBe(Number(flagValue(s.command!, '--kv-events-port')));
      expect(flagValue(s.command!, '--host')).toBe('0.0.0.0');
    }
  });

  it('mounts the Envoy config where Envoy reads it', () => {
    const e = services.envoy!;
    const cfgPath = flagValue(e.command ?? [], '-c');
    expect(cfgPath).toBeDefined();
    expect(hostPathOf(e, cfgPath!)).toBe(join(REPO_ROOT, 'deploy/envoy/envoy.yaml'));
    const listenerPorts = findAll(
      envoy.static_resources,
      (n) => 'port_value' in n && 'address' in n && n.address === '0.0.0.0',
    );
    const listener = ((envoy.static_resources as Any).listeners as Any[])[0]!;
    const lport = ((listener.address as Any).socket_address as Any).port_value as number;
    expect(listenerPorts.length).toBeGreaterThan(0);
    expect(containerPorts(e)).toContain(lport);
  });
});

describe('deploy/envoy/envoy.yaml', () => {
  const extProc = findAll(envoy, (n) => n.name === 'envoy.filters.http.ext_proc')[0]!;
  const cfg = extProc?.typed_config as Any;

  it('runs ext_proc in FULL_DUPLEX_STREAMED with the trailer modes Envoy requires', () => {
    expect(cfg['@type']).toBe(
      'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
    );
    expect(cfg.processing_mode).toMatchObject({
      request_header_mode: 'SEND',
      response_header_mode: 'SEND',
      request_body_mode: 'FULL_DUPLEX_STREAMED',
      response_body_mode: 'FULL_DUPLEX_STREAMED',
      request_trailer_mode: 'SEND',
      response_trailer_mode: 'SEND',
    });
    expect(((cfg.metadata_options as Any).receiving_namespaces as Any).untyped).toContain('envoy.lb');
  });

  it('sends ext_proc to an HTTP/2 cluster whose endpoints are the EPP services on their gRPC port', () => {
    const name = ((cfg.grpc_service as Any).envoy_grpc as Any).cluster_name as string;
    const cluster = clusterByName.get(name)!;
    expect(cluster, `cluster ${name}`).toBeDefined();
    const opts = (cluster.typed_extension_protocol_options as Any)[
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions'
    ] as Any;
    expect((opts.explicit_http_config as Any).http2_protocol_options).toBeDefined();
    const addrs = findAll(cluster.load_assignment, (n) => 'port_value' in n) as Array<{
      address: string;
      port_value: number;
    }>;
    const epps = ours.filter(([, s]) => s.command?.[0] === 'epp');
    expect(addrs.map((a) => a.address).sort()).toEqual(epps.map(([n]) => n).sort());
    for (const a of addrs) {
      const svc = services[a.address]!;
      expect(Number(flagValue(svc.command!, '--grpc-port') ?? 9002)).toBe(a.port_value);
      expect(dependsOn(services.envoy!)).toContain(a.address);
    }
    // TLS to the EPP exactly when the EPP serves TLS.
    const eppTls = epps.every(
      ([, s]) => !s.command!.some((a) => a === '--secure-serving=false' || a === '--no-secure-serving'),
    );
    const helpSaysTlsDefault = /--secure-serving/.test([...flagsOf('epp')].join(' '));
    const tlsOn = eppTls && helpSaysTlsDefault && secureServingDefault();
    expect(
      Boolean(cluster.transport_socket),
      `envoy TLS to the EPP must match the EPP (${tlsOn ? 'TLS' : 'plaintext'})`,
    ).toBe(tlsOn);
  });

  it('routes every request to an ORIGINAL_DST cluster reading the destination header', () => {
    const routes = findAll(envoy, (n) => 'route' in n && 'match' in n);
    expect(routes.length).toBeGreaterThan(0);
    for (const r of routes) {
      const c = clusterByName.get((r.route as Any).cluster as string)!;
      expect(c, `route cluster ${(r.route as Any).cluster}`).toBeDefined();
      expect(c.type).toBe('ORIGINAL_DST');
      expect(c.lb_policy).toBe('CLUSTER_PROVIDED');
      expect(c.original_dst_lb_config).toEqual({
        use_http_header: true,
        http_header_name: 'x-gateway-destination-endpoint',
      });
    }
  });

  it('puts the router last and strips a client-sent destination before ext_proc', () => {
    const hcm = findAll(envoy, (n) => n.name === 'envoy.filters.network.http_connection_manager')[0]!;
    const filters = ((hcm.typed_config as Any).http_filters as Any[]).map((f) => f.name as string);
    expect(filters.at(-1)).toBe('envoy.filters.http.router');
    const strip = filters.indexOf('envoy.filters.http.header_mutation');
    expect(strip).toBeGreaterThanOrEqual(0);
    expect(strip).toBeLessThan(filters.indexOf('envoy.filters.http.ext_proc'));
  });
});

/** Whether `epp --help` shows TLS on by default. */
function secureServingDefault(): boolean {
  const r = spawnSync(process.execPath, [CLI, 'epp', '--help'], { encoding: 'utf8', timeout: 20_000 });
  const line = r.stdout.split('\n').find((l) => l.includes('--secure-serving')) ?? '';
  const block = r.stdout.slice(r.stdout.indexOf(line), r.stdout.indexOf(line) + 300);
  return /default: true/.test(block);
}
