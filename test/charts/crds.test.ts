// The chart's custom resources (InferencePool v1 and v1alpha2, HTTPRoute, the
// example Gateway) validated against the upstream CRDs' openAPIV3Schema, read
// from the Go module cache (.ci/tools.sh: GIE_CRD_DIR, GATEWAY_API_CRD_DIR).
// Missing CRDs fail the tests; they never skip.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makePoolV1, makePoolV1alpha2 } from '../helpers/fake-apiserver.js';
import { crdDir, CrdValidator, loadCrds, type CelRule } from './crd-schema.js';
import { find, helmBin, render, ROOT, type K8sObject } from './helm.js';

const CHART = join(ROOT, 'charts/hermes-router');
const GATEWAY = join(ROOT, 'examples/1_pd_bucket/charts/gateway');
const PROFILES_DIR = join(ROOT, 'examples/profiles');
const PROFILES = readdirSync(PROFILES_DIR)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

/** A rendered object's spec (free-form: the CRD schema is what checks it). */
type Spec = K8sObject['spec'];

const V1 = 'inference.networking.k8s.io/v1';
const V1ALPHA2 = 'inference.networking.x-k8s.io/v1alpha2';
const ROUTE = 'gateway.networking.k8s.io/v1';

let validator: CrdValidator;
beforeAll(() => {
  helmBin();
  validator = new CrdValidator(loadCrds([crdDir('GIE_CRD_DIR'), crdDir('GATEWAY_API_CRD_DIR')]));
});

// Every render the charts are documented with: each profile, the legacy pool,
// a gateway in another namespace, and the example Gateway.
const RENDERS: [string, () => K8sObject[]][] = [
  ...PROFILES.map((p): [string, () => K8sObject[]] => [
    `profile ${p}`,
    () => render(CHART, { values: [join(PROFILES_DIR, p)] }),
  ]),
  ['v1alpha2 pool', () => render(CHART, { set: [`inferencepool.apiVersion=${V1ALPHA2}`] })],
  [
    'gateway in another namespace, FailClose, h2c, two ports',
    () =>
      render(CHART, {
        set: [
          'gateway.name=my-gw',
          'gateway.namespace=gw-ns',
          'inferencepool.inferenceExtension.failureMode=FailClose',
          'inferencepool.appProtocol=kubernetes.io/h2c',
          'inferencepool.targetPorts[0].number=8000',
          'inferencepool.targetPorts[1].number=8001',
        ],
      }),
  ],
  [
    'example gateway chart',
    () => render(GATEWAY, { release: 'inference-gateway', set: ['gateway.className=istio'] }),
  ],
];

/** Rules seen on rendered objects that have no JavaScript equivalent. */
const unevaluated = new Map<string, CelRule & { kind: string }>();

function expectValid(obj: { apiVersion: string; kind: string; metadata?: { name?: string } }): void {
  const r = validator.validate(obj);
  for (const u of r.unevaluated) unevaluated.set(`${obj.kind}${u.path} ${u.rule}`, { ...u, kind: obj.kind });
  expect(r.errors, `${obj.kind} ${obj.apiVersion} ${obj.metadata?.name}`).toEqual([]);
}

describe('custom resources against the upstream CRDs', () => {
  const validated = new Set<string>();

  it.each(RENDERS)('%s: every custom resource is valid', (_what, renderIt) => {
    const objs = renderIt().filter((o) => validator.has(o.apiVersion, o.kind));
    expect(objs.length).toBeGreaterThan(0);
    for (const o of objs) {
      expectValid(o);
      validated.add(`${o.apiVersion} ${o.kind}`);
    }
  });

  it('covered InferencePool v1 and v1alpha2, HTTPRoute and Gateway', () => {
    expect([...validated].sort()).toEqual([
      `${ROUTE} Gateway`,
      `${ROUTE} HTTPRoute`,
      `${V1} InferencePool`,
      `${V1ALPHA2} InferencePool`,
    ]);
  });

  // Broken copies of rendered objects must fail, so the valid results above
  // cannot come from a schema that accepts anything.
  it.each([
    [
      'targetPorts number 0',
      (s: Spec) => (s.targetPorts[0].number = 0),
      /targetPorts\/0\/number: must be >= 1/,
    ],
    [
      'failureMode "Maybe"',
      (s: Spec) => (s.endpointPickerRef.failureMode = 'Maybe'),
      /failureMode: must be equal to one of/,
    ],
    [
      'no endpointPickerRef.name',
      (s: Spec) => delete s.endpointPickerRef.name,
      /endpointPickerRef: must have required property 'name'/,
    ],
    [
      'an unknown field',
      (s: Spec) => (s.extensionRef = { name: 'x' }),
      /\/spec: must NOT have additional properties 'extensionRef'/,
    ],
    [
      'nine target ports',
      (s: Spec) => (s.targetPorts = [1, 2, 3, 4, 5, 6, 7, 8, 9].map((n) => ({ number: 8000 + n }))),
      /targetPorts: must NOT have more than 8 items/,
    ],
    [
      'duplicate target ports (CEL)',
      (s: Spec) => (s.targetPorts = [{ number: 8000 }, { number: 8000 }]),
      /port number must be unique/,
    ],
    [
      'Service without a port (CEL, kind defaulted)',
      (s: Spec) => {
        delete s.endpointPickerRef.port;
        delete s.endpointPickerRef.kind;
      },
      /port is required when kind is 'Service'/,
    ],
    [
      'an empty selector',
      (s: Spec) => (s.selector.matchLabels = {}),
      /matchLabels: must NOT have fewer than 1 properties/,
    ],
    ['appProtocol grpc', (s: Spec) => (s.appProtocol = 'grpc'), /appProtocol: must be equal to one of/],
  ])('InferencePool v1 with %s is refused', (_what, breakIt, message) => {
    const pool = find(render(CHART), 'InferencePool');
    breakIt(pool.spec);
    expect(validator.validate(pool).errors.join('\n')).toMatch(message);
  });

  it('legacy v1alpha2 pool, HTTPRoute and Gateway with broken fields are refused', () => {
    const pool = find(render(CHART, { set: [`inferencepool.apiVersion=${V1ALPHA2}`] }), 'InferencePool');
    pool.spec.targetPortNumber = 70000;
    pool.spec.extensionRef.failureMode = 'Maybe';
    const poolErrors = validator.validate(pool).errors.join('\n');
    expect(poolErrors).toMatch(/targetPortNumber: must be <= 65535/);
    expect(poolErrors).toMatch(/extensionRef\/failureMode: must be equal to one of/);

    const route = find(render(CHART), 'HTTPRoute');
    route.spec.rules[0].matches = [{ path: { type: 'Prefix', value: '/' } }];
    route.spec.rules[0].backendRefs[0].weight = -1;
    const routeErrors = validator.validate(route).errors.join('\n');
    expect(routeErrors).toMatch(/matches\/0\/path\/type: must be equal to one of/);
    expect(routeErrors).toMatch(/backendRefs\/0\/weight: must be >= 0/);

    const gw = find(render(GATEWAY, { set: ['gateway.className=istio'] }), 'Gateway');
    gw.spec.listeners.push({ ...gw.spec.listeners[0] }); // same name twice: list-map key
    const gwErrors = validator.validate(gw).errors.join('\n');
    expect(gwErrors).toMatch(/listeners: must pass "x-kubernetes-list-type" keyword validation/);
  });

  // The CEL rules reached by our objects are evaluated through their
  // JavaScript readings (cel-equivalents.ts); each broken object trips one.
  it.each([
    [
      'HTTPRoute',
      'a PathPrefix not starting with "/"',
      (o: K8sObject) => (o.spec.rules[0].matches = [{ path: { type: 'PathPrefix', value: 'v1' } }]),
      /must start with '\/'|startsWith/,
    ],
    [
      'HTTPRoute',
      'a path with "//"',
      (o: K8sObject) => (o.spec.rules[0].matches = [{ path: { value: '/a//b' } }]),
      /must not contain '\/\/'|contains/,
    ],
    [
      'HTTPRoute',
      'a Service backendRef without a port',
      (o: K8sObject) => (o.spec.rules[0].backendRefs = [{ name: 'svc' }]),
      /port/,
    ],
    [
      'HTTPRoute',
      'the same parentRef twice',
      (o: K8sObject) => o.spec.parentRefs.push({ ...o.spec.parentRefs[0] }),
      /parentRefs/,
    ],
    [
      'HTTPRoute',
      'backendRequest longer than request',
      (o: K8sObject) => (o.spec.rules[0].timeouts = { request: '10s', backendRequest: '1m' }),
      /backendRequest/,
    ],
    [
      'Gateway',
      'tls on an HTTP listener',
      (o: K8sObject) => (o.spec.listeners[0].tls = { mode: 'Terminate' }),
      /tls/,
    ],
    [
      'Gateway',
      'two listeners on one port and protocol',
      (o: K8sObject) => o.spec.listeners.push({ ...o.spec.listeners[0], name: 'other' }),
      /Combination of port, protocol and hostname|port/,
    ],
  ])('%s with %s is refused (CEL)', (kind, _what, breakIt, message) => {
    const obj = find(
      kind === 'Gateway' ? render(GATEWAY, { set: ['gateway.className=istio'] }) : render(CHART),
      kind,
    );
    breakIt(obj);
    const errors = validator.validate(obj).errors;
    expect(
      errors.some((e) => e.includes('(CEL: ')),
      errors.join('\n'),
    ).toBe(true);
    expect(errors.join('\n')).toMatch(message);
  });

  it("the discovery tests' fake API server pools are valid", () => {
    expectValid(
      makePoolV1({ name: 'p', namespace: 'n', matchLabels: { app: 'm' }, ports: [8000, 8001] }) as never,
    );
    expectValid(makePoolV1alpha2({ name: 'p', namespace: 'n', selector: { app: 'm' }, port: 8000 }) as never);
  });

  // Last: every CEL rule the rendered objects reach has a JavaScript reading;
  // a rule upstream adds or rewrites shows up here by name.
  it('CEL rules: every rule reached by the rendered objects was evaluated', () => {
    const rows = [...unevaluated.values()].map((r) => `${r.kind} ${r.path}: ${r.rule.replace(/\s+/g, ' ')}`);
    expect(rows, 'CEL rules without a reading in cel-equivalents.ts').toEqual([]);
  });
});
