// A real kube-apiserver with its etcd on loopback, for the discovery and
// chart tests: binaries from KUBE_APISERVER_BIN and ETCD_BIN (.ci/tools.sh
// builds them with Go from the module proxy and caches them). RBAC is on;
// the test authenticates with a static token of system:masters (token
// file), the EPP with a ServiceAccount token from the TokenRequest API.
// No controller-manager, scheduler or kubelet: the test writes pod status
// (IP, Ready) itself, as a kubelet would.
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';

export interface ApiResponse {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Warning headers (admission, PodSecurity, unknown fields). */
  warnings: string[];
}

export interface KubeApiServer {
  url: string;
  port: number;
  /** system:masters bearer token. */
  adminToken: string;
  caFile: string;
  /** Writes a kubeconfig for `token` (default: the admin's); returns its path. */
  writeKubeconfig(token?: string, namespace?: string): string;
  call(
    method: string,
    path: string,
    body?: unknown,
    opts?: { token?: string; contentType?: string },
  ): Promise<ApiResponse>;
  /** call() that throws unless the status is 2xx. */
  must(
    method: string,
    path: string,
    body?: unknown,
    opts?: { token?: string; contentType?: string },
  ): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Creates (or replaces) each CRD of a multi-document YAML file and waits until it is Established. */
  installCrds(docs: Array<Record<string, unknown>>): Promise<void>;
  /** SIGKILL the API server (etcd keeps the state). */
  kill(): Promise<void>;
  /** Start it again on the same port. */
  restart(): Promise<void>;
  logs(): string;
  stop(): Promise<void>;
}

export function kubeBinaries(): { apiserver: string; etcd: string } {
  const apiserver = process.env.KUBE_APISERVER_BIN;
  const etcd = process.env.ETCD_BIN;
  if (!apiserver || !etcd || !existsSync(apiserver) || !existsSync(etcd)) {
    throw new Error(
      `KUBE_APISERVER_BIN (${apiserver ?? 'unset'}) and ETCD_BIN (${etcd ?? 'unset'}) must name built binaries: ` +
        'run `source .ci/tools.sh` (builds k8s.io/kubernetes/cmd/kube-apiserver and etcd with Go) or `npm test`',
    );
  }
  return { apiserver, etcd };
}

function exited(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

function killProc(p: ChildProcess | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!p || exited(p)) return resolve();
    p.once('exit', () => resolve());
    p.kill('SIGKILL');
  });
}

export async function startKubeApiServer(opts: { readyTimeoutMs?: number } = {}): Promise<KubeApiServer> {
  const bins = kubeBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'hermes-kube-'));
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(join(dir, 'sa.key'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
  writeFileSync(join(dir, 'sa.pub'), publicKey.export({ type: 'spki', format: 'pem' }));
  const adminToken = randomBytes(16).toString('hex');
  writeFileSync(join(dir, 'tokens.csv'), `${adminToken},hermes-admin,hermes-admin,"system:masters"\n`);
  const [clientPort, peerPort, port] = [await freePort(), await freePort(), await freePort()];
  let out = '';
  const keep = (p: ChildProcess, tag: string) => {
    const add = (d: Buffer) => {
      out += d
        .toString()
        .split('\n')
        .filter(Boolean)
        .map((l) => `[${tag}] ${l}\n`)
        .join('');
      if (out.length > 200_000) out = out.slice(-100_000);
    };
    p.stdout?.on('data', add);
    p.stderr?.on('data', add);
    p.on('error', (e) => (out += `[${tag}] spawn error: ${e.message}\n`));
  };
  const etcd = spawn(
    bins.etcd,
    [
      '--name=hermes',
      `--data-dir=${join(dir, 'etcd')}`,
      `--listen-client-urls=http://127.0.0.1:${clientPort}`,
      `--advertise-client-urls=http://127.0.0.1:${clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=hermes=http://127.0.0.1:${peerPort}`,
      '--unsafe-no-fsync',
      '--log-level=error',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  keep(etcd, 'etcd');
  const apiArgs = [
    `--etcd-servers=http://127.0.0.1:${clientPort}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${port}`,
    `--cert-dir=${join(dir, 'certs')}`,
    `--token-auth-file=${join(dir, 'tokens.csv')}`,
    '--authorization-mode=RBAC',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${join(dir, 'sa.key')}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    '--endpoint-reconciler-type=none',
    '--profiling=false',
    '--v=0',
  ];
  let apiserver: ChildProcess | undefined;
  const launch = () => {
    apiserver = spawn(bins.apiserver, apiArgs, { stdio: ['ignore', 'pipe', 'pipe'] });
    keep(apiserver, 'apiserver');
  };
  const caFile = join(dir, 'certs', 'apiserver.crt');
  const url = `https://127.0.0.1:${port}`;

  const call: KubeApiServer['call'] = (method, path, body, o = {}) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
      const req = request(
        url + path,
        {
          method,
          ca: existsSync(caFile) ? readFileSync(caFile) : undefined,
          rejectUnauthorized: existsSync(caFile),
          headers: {
            authorization: `Bearer ${o.token ?? adminToken}`,
            accept: 'application/json',
            ...(payload
              ? { 'content-type': o.contentType ?? 'application/json', 'content-length': payload.length }
              : {}),
          },
          timeout: 30_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            let parsed: unknown = text;
            try {
              parsed = JSON.parse(text);
            } catch {
              /* non-JSON answer (e.g. /readyz "ok") */
            }
            const w = res.headers.warning;
            resolve({
              status: res.statusCode ?? 0,
              body: parsed,
              warnings: w === undefined ? [] : Array.isArray(w) ? w : [w],
            });
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
      req.on('error', reject);
      req.end(payload);
    });

  const must: KubeApiServer['must'] = async (method, path, body, o) => {
    const r = await call(method, path, body, o);
    if (r.status < 200 || r.status >= 300)
      throw new Error(`${method} ${path}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
    return r.body;
  };

  const waitReady = async () => {
    const end = Date.now() + (opts.readyTimeoutMs ?? 90_000);
    while (Date.now() < end) {
      if (apiserver && exited(apiserver)) throw new Error(`kube-apiserver exited:\n${out.slice(-4000)}`);
      const r = await call('GET', '/readyz').catch(() => undefined);
      if (r?.status === 200) return;
      await new Promise((res) => setTimeout(res, 200));
    }
    throw new Error(`kube-apiserver not ready:\n${out.slice(-4000)}`);
  };

  launch();
  await waitReady();
  // The default ServiceAccount is made by the controller-manager, which does
  // not run here; pods need it (ServiceAccount admission).
  const server: KubeApiServer = {
    url,
    port,
    adminToken,
    caFile,
    writeKubeconfig(token = adminToken, namespace = 'default') {
      const file = join(dir, `kubeconfig-${randomBytes(4).toString('hex')}.yaml`);
      writeFileSync(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          'clusters:',
          '- name: real',
          '  cluster:',
          `    server: ${url}`,
          `    certificate-authority: ${caFile}`,
          'users:',
          '- name: u',
          '  user:',
          `    token: ${token}`,
          'contexts:',
          '- name: c',
          '  context: {cluster: real, user: u, namespace: ' + namespace + '}',
          'current-context: c',
          '',
        ].join('\n'),
      );
      return file;
    },
    call,
    must,
    async installCrds(docs) {
      for (const crd of docs) {
        const name = (crd.metadata as { name: string }).name;
        const r = await call('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
        if (r.status !== 201 && r.status !== 409)
          throw new Error(`CRD ${name}: HTTP ${r.status} ${JSON.stringify(r.body).slice(0, 500)}`);
      }
      for (const crd of docs) {
        const name = (crd.metadata as { name: string }).name;
        const end = Date.now() + 30_000;
        for (;;) {
          const got = await must('GET', `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${name}`);
          const conds = (got.status?.conditions ?? []) as Array<{ type: string; status: string }>;
          if (conds.some((c) => c.type === 'Established' && c.status === 'True')) break;
          if (Date.now() > end) throw new Error(`CRD ${name} not Established`);
          await new Promise((res) => setTimeout(res, 100));
        }
      }
      // Serving starts a moment after Established (429 until the storage is up).
      for (const crd of docs) {
        const spec = crd.spec as {
          group: string;
          names: { plural: string };
          versions: Array<{ name: string; served: boolean }>;
        };
        for (const v of spec.versions.filter((x) => x.served)) {
          const path = `/apis/${spec.group}/${v.name}/${spec.names.plural}`;
          const end = Date.now() + 30_000;
          while ((await call('GET', path)).status !== 200) {
            if (Date.now() > end) throw new Error(`${path} not served`);
            await new Promise((res) => setTimeout(res, 100));
          }
        }
      }
    },
    kill: () => killProc(apiserver),
    async restart() {
      await killProc(apiserver);
      launch();
      await waitReady();
    },
    logs: () => out,
    async stop() {
      await killProc(apiserver);
      await killProc(etcd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return server;
}

/** Creates a namespace (with labels) and its default ServiceAccount. */
export async function createNamespace(
  api: KubeApiServer,
  name: string,
  labels: Record<string, string> = {},
): Promise<void> {
  await api.must('POST', '/api/v1/namespaces', {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels },
  });
  await api.must('POST', `/api/v1/namespaces/${name}/serviceaccounts`, {
    apiVersion: 'v1',
    kind: 'ServiceAccount',
    metadata: { name: 'default' },
  });
}
