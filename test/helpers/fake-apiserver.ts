// A small Kubernetes API server double for discovery tests. It speaks the
// real list/watch protocol for pods and InferencePools over plain HTTP:
// - list: {kind: PodList|InferencePoolList, apiVersion, metadata:{resourceVersion}, items}
// - watch (?watch=true): newline-delimited JSON events {type, object};
//   replays changes after ?resourceVersion, honours labelSelector and
//   fieldSelector (objects leaving a selector arrive as DELETED, entering as
//   ADDED, like the real server), allowWatchBookmarks, timeoutSeconds;
// - compaction: a watch from a version older than compact() gets 410 Gone,
//   as an ERROR event with a Status (default, what kube-apiserver does) or as
//   an HTTP 410;
// - faults: dropWatches() cuts open watch connections, stop()/start() takes
//   the server away and brings it back on the same port with its state.
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';

export const GROUP_V1 = 'inference.networking.k8s.io';
export const GROUP_V1ALPHA2 = 'inference.networking.x-k8s.io';
const VERSION_OF: Record<string, string> = { [GROUP_V1]: 'v1', [GROUP_V1ALPHA2]: 'v1alpha2' };

type Json = Record<string, unknown>;
export interface KObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
}

/** Collection key: "pods" or "inferencepools.<group>". */
type Resource = string;

interface LoggedEvent {
  rv: number;
  resource: Resource;
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  old: KObject | undefined;
  obj: KObject;
}

interface Watcher {
  resource: Resource;
  namespace: string;
  labelSel: Selector;
  fieldSel: Selector;
  bookmarks: boolean;
  res: http.ServerResponse;
  timer: NodeJS.Timeout | undefined;
}

type Selector = { key: string; op: '=' | '!='; value: string }[];

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  watch: boolean;
  authorization: string | undefined;
}

export interface FakeApiServerOptions {
  /** Pool API groups served (default both). An unserved group answers 404. */
  servedGroups?: string[];
  /** How an expired resourceVersion is reported to a watch (default 'event'). */
  goneMode?: 'event' | 'http';
  /** Serve HTTPS with this key/certificate (in-cluster config tests). */
  tls?: { key: string; cert: string };
}

export class FakeApiServer {
  private server: http.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private rv = 100;
  private compactedRv = 0;
  private readonly objects = new Map<Resource, Map<string, KObject>>();
  private readonly log: LoggedEvent[] = [];
  private readonly watchers = new Set<Watcher>();
  private portNum = 0;
  readonly requests: RequestRecord[] = [];
  servedGroups: Set<string>;
  goneMode: 'event' | 'http';
  private readonly tls: { key: string; cert: string } | undefined;

  constructor(opts: FakeApiServerOptions = {}) {
    this.tls = opts.tls;
    this.servedGroups = new Set(opts.servedGroups ?? [GROUP_V1, GROUP_V1ALPHA2]);
    this.goneMode = opts.goneMode ?? 'event';
  }

  get port(): number {
    return this.portNum;
  }

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.portNum}`;
  }

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Listens on 127.0.0.1 (port 0 = any; a restart reuses the first port). */
  async start(port = this.portNum): Promise<void> {
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    const server: http.Server = this.tls ? https.createServer(this.tls, handler) : http.createServer(handler);
    server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.portNum = (server.address() as AddressInfo).port;
  }

  /** The API server goes away: listening stops and every connection is cut. */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const w of this.watchers) if (w.timer) clearTimeout(w.timer);
    this.watchers.clear();
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Writes a kubeconfig pointing at this server; returns its path. */
  writeKubeconfig(dir: string, namespace = 'default'): string {
    const file = join(dir, 'kubeconfig');
    writeFileSync(
      file,
      [
        'apiVersion: v1',
        'kind: Config',
        'clusters:',
        '- name: fake',
        '  cluster:',
        `    server: ${this.url}`,
        // client-node refuses plain http unless TLS verification is off.
        ...(this.tls ? [] : ['    insecure-skip-tls-verify: true']),
        'users:',
        '- name: tester',
        '  user:',
        '    token: test-token',
        'contexts:',
        '- name: fake',
        '  context:',
        '    cluster: fake',
        '    user: tester',
        `    namespace: ${namespace}`,
        'current-context: fake',
        '',
      ].join('\n'),
    );
    return file;
  }

  // ---- state changes (each bumps the resourceVersion and notifies watchers) ----

  /**
   * Creates or replaces a pod. `notify: false` records the change without
   * telling open watches: an event the client missed (seen only by a relist).
   */
  upsertPod(pod: KObject, opts: { notify?: boolean } = {}): KObject {
    return this.write('pods', { apiVersion: 'v1', kind: 'Pod', ...pod }, opts.notify ?? true);
  }

  deletePod(namespace: string, name: string): void {
    this.remove('pods', namespace, name);
  }

  getPod(namespace: string, name: string): KObject | undefined {
    return clone(this.objects.get('pods')?.get(`${namespace}/${name}`));
  }

  upsertPool(pool: KObject, group = GROUP_V1): KObject {
    return this.write(`inferencepools.${group}`, {
      apiVersion: `${group}/${VERSION_OF[group]}`,
      kind: 'InferencePool',
      ...pool,
    });
  }

  deletePool(namespace: string, name: string, group = GROUP_V1): void {
    this.remove(`inferencepools.${group}`, namespace, name);
  }

  /** Forget history up to now: watches from older versions get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.log.length = 0;
  }

  /** Sends a BOOKMARK carrying the current resourceVersion to watchers that asked for them. */
  sendBookmarks(): number {
    let n = 0;
    for (const w of this.watchers) {
      if (!w.bookmarks) continue;
      const kind = w.resource === 'pods' ? 'Pod' : 'InferencePool';
      const apiVersion =
        w.resource === 'pods' ? 'v1' : `${groupOf(w.resource)}/${VERSION_OF[groupOf(w.resource)]}`;
      send(w.res, {
        type: 'BOOKMARK',
        object: { kind, apiVersion, metadata: { resourceVersion: String(this.rv) } },
      });
      n += 1;
    }
    return n;
  }

  /** Makes the resourceVersion move on without any visible change (other objects changing). */
  bumpResourceVersion(by = 1): void {
    this.rv += by;
  }

  /** Cuts every open watch connection (the TCP socket, no goodbye). */
  dropWatches(): number {
    let n = 0;
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      if (w.timer) clearTimeout(w.timer);
      w.res.socket?.destroy();
      n += 1;
    }
    return n;
  }

  /** Ends every open watch normally (as the server does at timeoutSeconds). */
  closeWatches(): number {
    const all = [...this.watchers];
    for (const w of all) this.endWatch(w);
    return all.length;
  }

  /** Sends an ERROR event with 410 Gone to every open watch (as kube-apiserver does on compaction). */
  expireWatches(): void {
    for (const w of [...this.watchers]) {
      send(w.res, { type: 'ERROR', object: goneStatus(this.compactedRv) });
      this.endWatch(w);
    }
  }

  watchCount(resource?: 'pods' | 'inferencepools'): number {
    return [...this.watchers].filter((w) => !resource || w.resource.startsWith(resource)).length;
  }

  listCount(resource: 'pods' | 'inferencepools'): number {
    return this.requests.filter((r) => !r.watch && r.path.endsWith(`/${resource}`)).length;
  }

  // ---- internals ----

  private write(resource: Resource, input: KObject, notify = true): KObject {
    const coll = this.collection(resource);
    const key = `${input.metadata.namespace}/${input.metadata.name}`;
    const old = coll.get(key);
    this.rv += 1;
    const obj = clone(input);
    obj.metadata = {
      uid: old?.metadata.uid ?? randomUUID(),
      creationTimestamp: old?.metadata.creationTimestamp ?? new Date().toISOString(),
      ...obj.metadata,
      resourceVersion: String(this.rv),
    };
    coll.set(key, obj);
    this.record({ rv: this.rv, resource, type: old ? 'MODIFIED' : 'ADDED', old, obj }, notify);
    return clone(obj);
  }

  private remove(resource: Resource, namespace: string, name: string): void {
    const coll = this.collection(resource);
    const key = `${namespace}/${name}`;
    const old = coll.get(key);
    if (!old) return;
    coll.delete(key);
    this.rv += 1;
    const obj = clone(old);
    obj.metadata.resourceVersion = String(this.rv);
    this.record({ rv: this.rv, resource, type: 'DELETED', old, obj });
  }

  private record(ev: LoggedEvent, notify = true): void {
    this.log.push(ev);
    if (notify) for (const w of this.watchers) this.deliver(w, ev);
  }

  /** Translates one change into what a watcher with selectors sees. */
  private deliver(w: Watcher, ev: LoggedEvent): void {
    if (ev.resource !== w.resource || ev.obj.metadata.namespace !== w.namespace) return;
    const wasIn = ev.old !== undefined && matches(w, ev.old);
    const isIn = ev.type !== 'DELETED' && matches(w, ev.obj);
    let type: string | undefined;
    if (ev.type === 'DELETED') type = wasIn ? 'DELETED' : undefined;
    else if (wasIn && isIn) type = 'MODIFIED';
    else if (!wasIn && isIn) type = 'ADDED';
    else if (wasIn && !isIn) type = 'DELETED';
    if (type) send(w.res, { type, object: ev.obj });
  }

  private collection(resource: Resource): Map<string, KObject> {
    let c = this.objects.get(resource);
    if (!c) this.objects.set(resource, (c = new Map()));
    return c;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const query = Object.fromEntries(url.searchParams.entries());
    const isWatch = query.watch === 'true' || query.watch === '1';
    this.requests.push({
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      watch: isWatch,
      authorization: req.headers.authorization,
    });
    if (req.method !== 'GET') return status(res, 405, 'MethodNotAllowed', 'only GET is served');
    const pods = /^\/api\/v1\/namespaces\/([^/]+)\/pods$/.exec(url.pathname);
    const pools = /^\/apis\/([^/]+)\/([^/]+)\/namespaces\/([^/]+)\/inferencepools$/.exec(url.pathname);
    let resource: Resource;
    let namespace: string;
    let listKind: string;
    let apiVersion: string;
    if (pods) {
      resource = 'pods';
      namespace = pods[1]!;
      listKind = 'PodList';
      apiVersion = 'v1';
    } else if (pools) {
      const [, group, version, ns] = pools;
      if (!this.servedGroups.has(group!) || VERSION_OF[group!] !== version) {
        return status(res, 404, 'NotFound', 'the server could not find the requested resource');
      }
      resource = `inferencepools.${group}`;
      namespace = ns!;
      listKind = 'InferencePoolList';
      apiVersion = `${group}/${version}`;
    } else {
      return status(res, 404, 'NotFound', 'the server could not find the requested resource');
    }
    let labelSel: Selector;
    let fieldSel: Selector;
    try {
      labelSel = parseSelector(query.labelSelector ?? '');
      fieldSel = parseSelector(query.fieldSelector ?? '');
    } catch (e) {
      return status(res, 400, 'BadRequest', (e as Error).message);
    }
    const w: Watcher = {
      resource,
      namespace,
      labelSel,
      fieldSel,
      bookmarks: query.allowWatchBookmarks === 'true',
      res,
      timer: undefined,
    };
    if (!isWatch) {
      const items = [...this.collection(resource).values()].filter(
        (o) => o.metadata.namespace === namespace && matches(w, o),
      );
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ kind: listKind, apiVersion, metadata: { resourceVersion: String(this.rv) }, items }),
      );
      return;
    }
    this.startWatch(w, query.resourceVersion ?? '', Number(query.timeoutSeconds ?? 0));
  }

  private startWatch(w: Watcher, fromRv: string, timeoutSeconds: number): void {
    const from = fromRv === '' || fromRv === '0' ? undefined : Number(fromRv);
    if (from !== undefined && from < this.compactedRv) {
      if (this.goneMode === 'http')
        return status(w.res, 410, 'Expired', `too old resource version: ${from} (${this.compactedRv})`);
      w.res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      send(w.res, { type: 'ERROR', object: goneStatus(from) });
      w.res.end();
      return;
    }
    w.res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    w.res.flushHeaders();
    if (from === undefined) {
      // No version: the current state as ADDED events, then changes.
      for (const o of this.collection(w.resource).values()) {
        if (o.metadata.namespace === w.namespace && matches(w, o)) send(w.res, { type: 'ADDED', object: o });
      }
    } else {
      for (const ev of this.log) if (ev.rv > from) this.deliver(w, ev);
    }
    this.watchers.add(w);
    w.res.on('close', () => {
      this.watchers.delete(w);
      if (w.timer) clearTimeout(w.timer);
    });
    if (timeoutSeconds > 0) w.timer = setTimeout(() => this.endWatch(w), timeoutSeconds * 1000);
  }

  private endWatch(w: Watcher): void {
    this.watchers.delete(w);
    if (w.timer) clearTimeout(w.timer);
    w.res.end();
  }
}

function send(res: http.ServerResponse, ev: Json): void {
  if (!res.writableEnded && !res.destroyed) res.write(`${JSON.stringify(ev)}\n`);
}

function status(res: http.ServerResponse, code: number, reason: string, message: string): void {
  res.writeHead(code, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message,
      reason,
      code,
    }),
  );
}

function goneStatus(rv: number): Json {
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: `too old resource version: ${rv}`,
    reason: 'Expired',
    code: 410,
  };
}

function groupOf(resource: Resource): string {
  return resource.slice('inferencepools.'.length);
}

function parseSelector(s: string): Selector {
  if (s.trim() === '') return [];
  return s.split(',').map((part) => {
    const m = /^\s*([^!=\s]+)\s*(==|=|!=)\s*([^\s]*)\s*$/.exec(part);
    if (!m) throw new Error(`unable to parse requirement: ${part}`);
    return { key: m[1]!, op: m[2] === '!=' ? '!=' : '=', value: m[3]! };
  });
}

function fieldValue(o: KObject, key: string): string | undefined {
  if (key === 'metadata.name') return o.metadata.name;
  if (key === 'metadata.namespace') return o.metadata.namespace;
  return undefined;
}

function matches(w: Pick<Watcher, 'labelSel' | 'fieldSel'>, o: KObject): boolean {
  const labels = o.metadata.labels ?? {};
  const ok = (sel: Selector, get: (k: string) => string | undefined) =>
    sel.every((r) => (r.op === '=' ? get(r.key) === r.value : get(r.key) !== r.value));
  return ok(w.labelSel, (k) => labels[k]) && ok(w.fieldSel, (k) => fieldValue(o, k));
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

// ---- real-shaped objects ----

export interface PodInput {
  name: string;
  namespace?: string;
  labels?: Record<string, string>;
  ip?: string;
  ready?: boolean;
  ports?: number[];
  deleting?: boolean;
  annotations?: Record<string, string>;
}

/** A Pod as kube-apiserver returns it for a running vLLM container. */
export function makePod(p: PodInput): KObject {
  const ready = p.ready ?? true;
  const now = new Date().toISOString();
  const pod: KObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: p.name,
      namespace: p.namespace ?? 'default',
      labels: p.labels ?? {},
      ...(p.annotations ? { annotations: p.annotations } : {}),
      ...(p.deleting ? { deletionTimestamp: now, deletionGracePeriodSeconds: 30 } : {}),
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: `${p.name}-rs`,
          uid: randomUUID(),
          controller: true,
        },
      ],
    },
    spec: {
      containers: [
        {
          name: 'vllm',
          image: 'vllm/vllm-openai:latest',
          ports: [
            ...(p.ports ?? [8000]).map((n) => ({ name: `http-${n}`, containerPort: n, protocol: 'TCP' })),
            { name: 'zmq-pub', containerPort: 5557, protocol: 'TCP' },
          ],
        },
      ],
      nodeName: 'node-1',
      restartPolicy: 'Always',
    },
    status: {
      phase: 'Running',
      hostIP: '10.0.0.1',
      ...(p.ip === undefined ? {} : { podIP: p.ip, podIPs: [{ ip: p.ip }] }),
      startTime: now,
      conditions: [
        { type: 'PodScheduled', status: 'True', lastTransitionTime: now },
        { type: 'Initialized', status: 'True', lastTransitionTime: now },
        { type: 'ContainersReady', status: ready ? 'True' : 'False', lastTransitionTime: now },
        { type: 'Ready', status: ready ? 'True' : 'False', lastTransitionTime: now },
      ],
    },
  };
  return pod;
}

/** An inference.networking.k8s.io/v1 InferencePool. */
export function makePoolV1(p: {
  name: string;
  namespace?: string;
  matchLabels: Record<string, string>;
  ports: number[];
  epp?: string;
}): KObject {
  return {
    apiVersion: `${GROUP_V1}/v1`,
    kind: 'InferencePool',
    metadata: { name: p.name, namespace: p.namespace ?? 'default', generation: 1 },
    spec: {
      selector: { matchLabels: p.matchLabels },
      targetPorts: p.ports.map((number) => ({ number })),
      appProtocol: 'http',
      endpointPickerRef: {
        group: '',
        kind: 'Service',
        name: p.epp ?? `${p.name}-epp`,
        port: { number: 9002 },
        failureMode: 'FailOpen',
      },
    },
    status: { parents: [] },
  };
}

/** A legacy inference.networking.x-k8s.io/v1alpha2 InferencePool. */
export function makePoolV1alpha2(p: {
  name: string;
  namespace?: string;
  selector: Record<string, string>;
  port: number;
  epp?: string;
}): KObject {
  return {
    apiVersion: `${GROUP_V1ALPHA2}/v1alpha2`,
    kind: 'InferencePool',
    metadata: { name: p.name, namespace: p.namespace ?? 'default', generation: 1 },
    spec: {
      selector: p.selector,
      targetPortNumber: p.port,
      extensionRef: {
        group: '',
        kind: 'Service',
        name: p.epp ?? `${p.name}-epp`,
        portNumber: 9002,
        failureMode: 'FailClose',
      },
    },
    status: { parent: [] },
  };
}
