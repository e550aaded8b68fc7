// charts/hermes-router rendered by the real helm with every example profile,
// then checked object by object; schema-violating values must be refused.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GIE_DEFAULT_CONFIG_TEXT } from '../../src/config/endpoint-picker-config.js';
import { READINESS_SERVICES } from '../../src/observability/health.js';
import {
  checkConfig,
  find,
  helm,
  helmBin,
  kinds,
  render,
  renderError,
  ROOT,
  type K8sObject,
} from './helm.js';

const CHART = join(ROOT, 'charts/hermes-router');
const PROFILES_DIR = join(ROOT, 'examples/profiles');
const PROFILES = readdirSync(PROFILES_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const NS = 'ai-inference';
const POOL = 'vllm-qwen-qwen3-8b';
const EPP = `${POOL}-epp`;

let tmp: string;
beforeAll(() => {
  helmBin(); // fail loudly here when helm is missing
  tmp = mkdtempSync(join(tmpdir(), 'hermes-chart-'));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function profileValues(file: string): { active: string; custom: Record<string, string> } {
  const doc = yaml.load(readFileSync(join(PROFILES_DIR, file), 'utf8')) as {
    inferencepool: {
      inferenceExtension: { pluginsConfigFile: string; pluginsCustomConfig: Record<string, string> };
    };
  };
  const ext = doc.inferencepool.inferenceExtension;
  return { active: ext.pluginsConfigFile, custom: ext.pluginsCustomConfig };
}

function eppContainer(objs: K8sObject[]) {
  const dep = find(objs, 'Deployment', EPP);
  return { dep, c: dep.spec.template.spec.containers[0] };
}

function argValue(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}

describe('charts/hermes-router', () => {
  it('helm dependency build works offline and helm lint passes (defaults and every profile)', () => {
    const dep = helm(['dependency', 'build', CHART]);
    expect(dep.ok, dep.stderr).toBe(true);
    const lint = helm(['lint', CHART, '--strict']);
    expect(lint.ok, lint.stdout + lint.stderr).toBe(true);
    for (const p of PROFILES) {
      const r = helm(['lint', CHART, '-f', join(PROFILES_DIR, p)]);
      expect(r.ok, `${p}: ${r.stdout}${r.stderr}`).toBe(true);
    }
  });

  it.each(PROFILES)('profile %s renders the whole install', (profile) => {
    const objs = render(CHART, { values: [join(PROFILES_DIR, profile)] });
    expect(kinds(objs)).toEqual(
      [
        `ConfigMap/${EPP}`,
        `DestinationRule/${EPP}`,
        `Deployment/${EPP}`,
        `Deployment/${POOL}-redis`,
        `HTTPRoute/${POOL}-route`,
        `InferencePool/${POOL}`,
        `NetworkPolicy/${EPP}`,
        `NetworkPolicy/${POOL}-redis`,
        `PodDisruptionBudget/${EPP}`,
        `Role/${EPP}`,
        `RoleBinding/${EPP}`,
        `Service/${EPP}`,
        `Service/${POOL}-redis`,
        `ServiceAccount/${EPP}`,
      ].sort(),
    );
    for (const o of objs) expect(o.metadata.namespace).toBe(NS);

    // The plugins config: the profile's text byte for byte, selected by the args, mounted at /config.
    const { active, custom } = profileValues(profile);
    const cm = find(objs, 'ConfigMap', EPP);
    for (const [name, text] of Object.entries(custom)) expect(cm.data?.[name]).toBe(text);
    expect(cm.data?.['default-plugins.yaml']).toBe(GIE_DEFAULT_CONFIG_TEXT);
    const { dep, c } = eppContainer(objs);
    const args: string[] = c.args;
    expect(args[0]).toBe('epp');
    expect(argValue(args, '--config-file')).toBe(`/config/${active}`);
    expect(argValue(args, '--pool-name')).toBe(POOL);
    expect(argValue(args, '--pool-namespace')).toBe(NS);
    expect(argValue(args, '--grpc-port')).toBe('9002');
    expect(argValue(args, '--grpc-health-port')).toBe('9003');
    expect(argValue(args, '--metrics-port')).toBe('9090');
    // The EPP's /metrics is loopback-only by default; the chart opts in for the scrape.
    expect(argValue(args, '--metrics-bind')).toBe('0.0.0.0');
    expect(args).not.toContain('--admin-bind');
    expect(argValue(args, '--redis-url')).toBe(`redis://${POOL}-redis.${NS}.svc:6379`);
    expect(c.volumeMounts).toContainEqual({ name: 'plugins-config', mountPath: '/config', readOnly: true });
    expect(dep.spec.template.spec.volumes).toContainEqual({
      name: 'plugins-config',
      configMap: { name: EPP },
    });

    // check-config accepts the config exactly as the pod will read it.
    const file = join(tmp, `${profile}-${active}`);
    writeFileSync(file, cm.data![active]!);
    const cc = checkConfig(file);
    expect(cc.ok, cc.stderr + cc.stdout).toBe(true);
  });

  it('EPP Deployment: label inferencepool=<name>-epp, 2 replicas with Redis, gRPC probes, hardened container', () => {
    const objs = render(CHART, { values: [join(PROFILES_DIR, 'epp-pd-bucket.yaml')] });
    const { dep, c } = eppContainer(objs);
    expect(dep.spec.replicas).toBe(2);
    expect(dep.spec.selector.matchLabels).toEqual({ inferencepool: EPP });
    expect(dep.spec.template.metadata.labels.inferencepool).toBe(EPP);
    expect(dep.spec.template.spec.serviceAccountName).toBe(EPP);
    expect(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort])).toEqual([
      ['grpc', 9002],
      ['grpc-health', 9003],
      ['metrics', 9090],
    ]);
    expect(c.readinessProbe.grpc.port).toBe(9003);
    expect(c.livenessProbe.grpc.port).toBe(9003);
    // Names the EPP's health service answers: liveness while running, readiness once synced.
    expect(c.livenessProbe.grpc.service).toBe('liveness');
    expect(READINESS_SERVICES).toContain(c.readinessProbe.grpc.service);
    // The image's ENTRYPOINT is the CLI (Dockerfile), so only args are given.
    expect(c.command).toBeUndefined();
    expect(c.resources.requests).toBeDefined();
    expect(c.resources.limits.memory).toBeDefined();
    expect(c.securityContext).toMatchObject({
      runAsNonRoot: true,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    });
    expect(dep.spec.template.spec.securityContext.runAsNonRoot).toBe(true);
    expect(c.env.map((e: { name: string }) => e.name)).toEqual(
      expect.arrayContaining(['NAMESPACE', 'POD_NAME']),
    );
  });

  it('Service: grpc-ext-proc 9002 (http2), grpc-health 9003, http-metrics 9090, selecting the EPP pods', () => {
    const objs = render(CHART);
    const svc = find(objs, 'Service', EPP);
    expect(svc.spec.selector).toEqual({ inferencepool: EPP });
    expect(svc.spec.ports).toEqual([
      { name: 'grpc-ext-proc', port: 9002, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'http2' },
      { name: 'grpc-health', port: 9003, targetPort: 'grpc-health', protocol: 'TCP' },
      { name: 'http-metrics', port: 9090, targetPort: 'metrics', protocol: 'TCP' },
    ]);
  });

  it('RBAC: read-only pods, inferencepools (both API groups), objectives and rewrites in its namespace, nothing else', () => {
    const objs = render(CHART);
    const role = find(objs, 'Role', EPP);
    expect(role.rules).toEqual([
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
      {
        apiGroups: ['inference.networking.k8s.io', 'inference.networking.x-k8s.io'],
        resources: ['inferencepools'],
        verbs: ['get', 'list', 'watch'],
      },
      {
        apiGroups: ['inference.networking.x-k8s.io'],
        resources: ['inferenceobjectives', 'inferencemodelrewrites'],
        verbs: ['get', 'list', 'watch'],
      },
    ]);
    expect(objs.some((o) => o.kind === 'ClusterRole' || o.kind === 'ClusterRoleBinding')).toBe(false);
    const rb = find(objs, 'RoleBinding', EPP);
    expect(rb.roleRef).toMatchObject({ kind: 'Role', name: EPP });
    expect(rb.subjects).toEqual([{ kind: 'ServiceAccount', name: EPP, namespace: NS }]);
  });

  it('InferencePool v1 and the HTTPRoute to it', () => {
    const objs = render(CHART, {
      set: [
        'gateway.name=my-gw',
        'gateway.namespace=gw-ns',
        'inferencepool.inferenceExtension.failureMode=FailClose',
      ],
    });
    const pool = find(objs, 'InferencePool', POOL);
    expect(pool.apiVersion).toBe('inference.networking.k8s.io/v1');
    expect(pool.spec).toEqual({
      selector: { matchLabels: { 'openfuyao.com/model': 'qwen-qwen3-8b' } },
      targetPorts: [{ number: 8000 }],
      appProtocol: 'http',
      endpointPickerRef: {
        group: '',
        kind: 'Service',
        name: EPP,
        port: { number: 9002 },
        failureMode: 'FailClose',
      },
    });
    const route = find(objs, 'HTTPRoute');
    expect(route.spec.parentRefs).toEqual([
      { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'my-gw', namespace: 'gw-ns' },
    ]);
    expect(route.spec.rules[0].backendRefs).toEqual([
      { group: 'inference.networking.k8s.io', kind: 'InferencePool', name: POOL },
    ]);
  });

  it('legacy v1alpha2 pool: flat selector, targetPortNumber, extensionRef', () => {
    const objs = render(CHART, { set: ['inferencepool.apiVersion=inference.networking.x-k8s.io/v1alpha2'] });
    const pool = find(objs, 'InferencePool', POOL);
    expect(pool.spec).toEqual({
      selector: { 'openfuyao.com/model': 'qwen-qwen3-8b' },
      targetPortNumber: 8000,
      extensionRef: { group: '', kind: 'Service', name: EPP, portNumber: 9002, failureMode: 'FailOpen' },
    });
    expect(find(objs, 'HTTPRoute').spec.rules[0].backendRefs[0].group).toBe('inference.networking.x-k8s.io');
  });

  it('Redis: off => 1 replica, no Redis objects, no PDB; external URL => no Redis objects, that URL', () => {
    const off = render(CHART, { set: ['redis.enabled=false'] });
    expect(eppContainer(off).dep.spec.replicas).toBe(1);
    expect(eppContainer(off).c.args).not.toContain('--redis-url');
    expect(kinds(off).filter((k) => k.includes('redis') || k.startsWith('PodDisruptionBudget'))).toEqual([]);

    const ext = render(CHART, {
      set: ['redis.externalUrl=redis://redis.shared:6379/2', 'redis.passwordSecret.name=redis-auth'],
    });
    expect(kinds(ext).filter((k) => k.includes('-redis'))).toEqual([]);
    const { dep, c } = eppContainer(ext);
    expect(dep.spec.replicas).toBe(2);
    expect(argValue(c.args, '--redis-url')).toBe('redis://redis.shared:6379/2');
    expect(c.env).toContainEqual({
      name: 'REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } },
    });

    const three = render(CHART, { set: ['inferencepool.inferenceExtension.replicas=3'] });
    expect(eppContainer(three).dep.spec.replicas).toBe(3);
  });

  it('bundled Redis: passwordSecret becomes requirepass; TLS serves rediss:// with the CA given to the EPP (issue 17)', () => {
    const redisOf = (objs: K8sObject[]) => find(objs, 'Deployment', `${POOL}-redis`).spec.template.spec;
    // No secret: no password (and nothing refers to one).
    const plain = redisOf(render(CHART)).containers[0];
    expect(plain.args).not.toContain('--requirepass');
    expect(plain.env).toBeUndefined();

    const objs = render(CHART, {
      set: ['redis.passwordSecret.name=redis-auth', 'redis.passwordSecret.key=pw'],
    });
    const c = redisOf(objs).containers[0];
    expect(argValue(c.args, '--requirepass')).toBe('$(REDIS_PASSWORD)');
    expect(c.env).toEqual([
      { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'pw' } } },
    ]);
    // The EPP authenticates with the same secret.
    expect(eppContainer(objs).c.env).toContainEqual({
      name: 'REDIS_PASSWORD',
      valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'pw' } },
    });

    const tls = render(CHART, { set: ['redis.tls.enabled=true', 'redis.tls.secretName=redis-tls'] });
    const spec = redisOf(tls);
    const t = spec.containers[0];
    expect(argValue(t.args, '--port')).toBe('0');
    expect(argValue(t.args, '--tls-port')).toBe('6379');
    expect(argValue(t.args, '--tls-cert-file')).toBe('/tls/tls.crt');
    expect(spec.volumes).toContainEqual({ name: 'tls', secret: { secretName: 'redis-tls' } });
    const { dep, c: epp } = eppContainer(tls);
    expect(argValue(epp.args, '--redis-url')).toBe(`rediss://${POOL}-redis.${NS}.svc:6379`);
    expect(epp.env).toContainEqual({ name: 'REDIS_TLS_CA_FILE', value: '/redis-tls/ca.crt' });
    expect(epp.volumeMounts).toContainEqual({ name: 'redis-tls', mountPath: '/redis-tls', readOnly: true });
    expect(dep.spec.template.spec.volumes).toContainEqual({
      name: 'redis-tls',
      secret: { secretName: 'redis-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
    });
    expect(renderError(CHART, { set: ['redis.tls.enabled=true'] })).toMatch(
      /redis.tls.secretName is required/,
    );
  });

  it('NetworkPolicies: EPP <- gateway (and metrics <- Prometheus); Redis <- EPP and indexer; indexer <- EPP and model pods', () => {
    const objs = render(CHART, {
      set: [
        'gateway.namespace=gw-system',
        'networkPolicy.cacheIndexer.podSelector.matchLabels.app=cache-indexer',
      ],
    });
    const epp = find(objs, 'NetworkPolicy', EPP).spec;
    expect(epp.podSelector).toEqual({ matchLabels: { inferencepool: EPP } });
    expect(epp.policyTypes).toEqual(['Ingress']);
    expect(epp.ingress).toEqual([
      {
        ports: [{ port: 9002, protocol: 'TCP' }],
        from: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'gw-system' } },
            podSelector: { matchLabels: { 'gateway.networking.k8s.io/gateway-name': 'inference-gateway' } },
          },
        ],
      },
      {
        ports: [{ port: 9090, protocol: 'TCP' }],
        from: [
          { namespaceSelector: {}, podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } } },
        ],
      },
    ]);
    const redis = find(objs, 'NetworkPolicy', `${POOL}-redis`).spec;
    expect(redis.podSelector.matchLabels).toEqual(
      find(objs, 'Deployment', `${POOL}-redis`).spec.template.metadata.labels,
    );
    expect(redis.ingress).toEqual([
      {
        ports: [{ port: 6379, protocol: 'TCP' }],
        from: [
          { podSelector: { matchLabels: { inferencepool: EPP } } },
          { podSelector: { matchLabels: { app: 'cache-indexer' } } },
        ],
      },
    ]);
    const idx = find(objs, 'NetworkPolicy', `${POOL}-cache-indexer`).spec;
    expect(idx.podSelector).toEqual({ matchLabels: { app: 'cache-indexer' } });
    expect(idx.ingress).toEqual([
      {
        ports: [{ port: 8080, protocol: 'TCP' }],
        from: [{ podSelector: { matchLabels: { inferencepool: EPP } } }],
      },
      {
        ports: [{ port: 5557, protocol: 'TCP' }],
        from: [{ podSelector: { matchLabels: { 'openfuyao.com/model': 'qwen-qwen3-8b' } } }],
      },
    ]);
    // The EPP's selector matches its pods; gatewayFrom replaces the default peer.
    expect(find(objs, 'Deployment', EPP).spec.template.metadata.labels.inferencepool).toBe(EPP);
    const custom = render(CHART, {
      set: [
        'networkPolicy.gatewayFrom[0].podSelector.matchLabels.istio=ingressgateway',
        'networkPolicy.metricsFrom=null',
      ],
    });
    expect(find(custom, 'NetworkPolicy', EPP).spec.ingress).toEqual([
      {
        ports: [{ port: 9002, protocol: 'TCP' }],
        from: [{ podSelector: { matchLabels: { istio: 'ingressgateway' } } }],
      },
    ]);
    expect(
      kinds(render(CHART, { set: ['networkPolicy.enabled=false'] })).filter((k) =>
        k.startsWith('NetworkPolicy'),
      ),
    ).toEqual([]);
  });

  it('egress (opt-in): API server, DNS, model servers, Redis, cache-indexer and extraTo only; no API server CIDR is an error', () => {
    expect(find(render(CHART), 'NetworkPolicy', EPP).spec.egress).toBeUndefined();
    expect(renderError(CHART, { set: ['networkPolicy.egress.enabled=true'] })).toMatch(
      /networkPolicy.egress.apiServerCidrs is required/,
    );
    const objs = render(CHART, {
      set: [
        'networkPolicy.egress.enabled=true',
        'networkPolicy.egress.apiServerCidrs[0]=10.0.0.1/32',
        'networkPolicy.cacheIndexer.podSelector.matchLabels.app=cache-indexer',
        'networkPolicy.egress.extraTo[0].to[0].ipBlock.cidr=192.168.10.0/24',
        'networkPolicy.egress.extraTo[0].ports[0].port=6380',
      ],
    });
    const epp = find(objs, 'NetworkPolicy', EPP).spec;
    expect(epp.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(epp.egress).toEqual([
      {
        to: [{ ipBlock: { cidr: '10.0.0.1/32' } }],
        ports: [
          { port: 443, protocol: 'TCP' },
          { port: 6443, protocol: 'TCP' },
        ],
      },
      {
        to: [
          {
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
            podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
          },
        ],
        ports: [
          { port: 53, protocol: 'UDP' },
          { port: 53, protocol: 'TCP' },
        ],
      },
      { to: [{ podSelector: { matchLabels: { 'openfuyao.com/model': 'qwen-qwen3-8b' } } }] },
      {
        to: [
          {
            podSelector: {
              matchLabels: find(objs, 'NetworkPolicy', `${POOL}-redis`).spec.podSelector.matchLabels,
            },
          },
        ],
        ports: [{ port: 6379, protocol: 'TCP' }],
      },
      {
        to: [{ podSelector: { matchLabels: { app: 'cache-indexer' } } }],
        ports: [{ port: 8080, protocol: 'TCP' }],
      },
      { to: [{ ipBlock: { cidr: '192.168.10.0/24' } }], ports: [{ port: 6380 }] },
    ]);
    // The model-server peer is the pool's own selector, so scraping and KV events stay allowed.
    expect(find(objs, 'InferencePool', POOL).spec.selector.matchLabels).toEqual({
      'openfuyao.com/model': 'qwen-qwen3-8b',
    });
    // Without the bundled Redis there is no Redis rule.
    const noRedis = render(CHART, {
      set: [
        'redis.enabled=false',
        'networkPolicy.egress.enabled=true',
        'networkPolicy.egress.apiServerCidrs[0]=10.0.0.1/32',
      ],
    });
    expect(find(noRedis, 'NetworkPolicy', EPP).spec.egress).toHaveLength(3);
  });

  it('ServiceMonitor on request; DestinationRule only for istio', () => {
    const objs = render(CHART, {
      set: ['monitoring.serviceMonitor.enabled=true', 'gateway.className=gke-l7-regional-external-managed'],
    });
    const sm = find(objs, 'ServiceMonitor', EPP);
    expect(sm.spec.endpoints[0].port).toBe('http-metrics');
    // The ServiceMonitor selects the EPP Service (not the pods).
    const svcLabels = find(objs, 'Service', EPP).metadata.labels ?? {};
    expect(Object.keys(sm.spec.selector.matchLabels).length).toBeGreaterThan(0);
    for (const [k, v] of Object.entries(sm.spec.selector.matchLabels as Record<string, string>))
      expect(svcLabels[k]).toBe(v);
    expect(objs.some((o) => o.kind === 'DestinationRule')).toBe(false);
    const dr = find(render(CHART), 'DestinationRule', EPP);
    expect(dr.spec.host).toBe(`${EPP}.${NS}.svc.cluster.local`);
    expect(dr.spec.trafficPolicy.tls).toEqual({ mode: 'SIMPLE', insecureSkipVerify: true });
  });

  it('keeps awkward config text byte for byte (no final newline, leading spaces)', () => {
    const values = join(tmp, 'awkward.yaml');
    const texts = {
      'a.yaml': 'kind: EndpointPickerConfig\nplugins: []',
      'b.yaml': '  indented: true\n\n\n',
      'c.yaml': 'x: 1\n\n# blank line above\n',
    };
    writeFileSync(
      values,
      yaml.dump({
        inferencepool: { inferenceExtension: { pluginsConfigFile: 'c.yaml', pluginsCustomConfig: texts } },
      }),
    );
    const cm = find(render(CHART, { values: [values] }), 'ConfigMap', EPP);
    for (const [k, v] of Object.entries(texts)) expect(cm.data?.[k]).toBe(v);
  });

  it.each([
    [
      'failureMode outside the enum',
      ['inferencepool.inferenceExtension.failureMode=Sometimes'],
      /failureMode/,
    ],
    ['empty pool name', ['inferencepool.name='], /inferencepool\/name/],
    ['pool name not a DNS label', ['inferencepool.name=Bad_Name'], /inferencepool\/name/],
    ['port as a string', ['inferencepool.inferenceExtension.extProcPort=grpc'], /extProcPort/],
    ['port out of range', ['inferencepool.targetPorts[0].number=70000'], /targetPorts/],
    ['negative replicas', ['inferencepool.inferenceExtension.replicas=-1'], /replicas/],
    ['unknown key (typo)', ['inferencepool.inferenceExtention.replicas=2'], /inferenceExtention/],
    [
      'non-string plugins config',
      ['inferencepool.inferenceExtension.pluginsCustomConfig.x\\.yaml=3'],
      /pluginsCustomConfig/,
    ],
    [
      'active config not among the keys',
      ['inferencepool.inferenceExtension.pluginsConfigFile=missing.yaml'],
      /missing\.yaml.*not a key/,
    ],
    ['redis URL with the wrong scheme', ['redis.externalUrl=http://redis:6379'], /externalUrl/],
    ['bad appProtocol', ['inferencepool.appProtocol=grpc'], /appProtocol/],
    ['empty selector', ['inferencepool.modelServers.matchLabels=null'], /matchLabels/],
  ])('refuses %s', (_what, set, message) => {
    expect(renderError(CHART, { set })).toMatch(message);
  });

  it('refuses a values file without inferencepool.name', () => {
    const values = join(tmp, 'noname.yaml');
    writeFileSync(values, 'inferencepool:\n  name: null\n');
    expect(renderError(CHART, { values: [values] })).toMatch(/inferencepool\/name|name/);
  });
});
