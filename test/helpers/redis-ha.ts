// Highly available Redis set-ups on loopback for the failover tests: a
// primary, a replica and three Sentinels (`redis-server --sentinel`), or a
// 3-primary/3-replica Cluster made by `redis-cli --cluster create`. Short
// failure-detection timeouts (1 s) keep the failovers within a test's time.
// A set is handed out only once every replica has finished its first full
// sync: a replica that never synced refuses to be promoted (its data age is
// unbounded), so a primary killed earlier stays failed for good.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

const run = promisify(execFile);
const SERVER = () => process.env.REDIS_SERVER_BIN ?? 'redis-server';
const CLI = () => process.env.REDIS_CLI_BIN ?? 'redis-cli';

export interface RedisNode {
  port: number;
  process: ChildProcess;
  /** SIGKILL, resolves when the process is gone. */
  kill(): Promise<void>;
}

/** `redis-cli -p port args...` -> stdout (trimmed). */
export async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run(CLI(), ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

async function waitFor(what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await cond().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms`);
}

function node(port: number, args: string[]): RedisNode {
  const child = spawn(SERVER(), args, { stdio: 'ignore' });
  child.on('error', () => undefined);
  return {
    port,
    process: child,
    kill: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      }),
  };
}

const base = (port: number) => [
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
];

export interface SentinelSet {
  masterName: string;
  primary: RedisNode;
  replica: RedisNode;
  sentinels: RedisNode[];
  /** redis+sentinel://127.0.0.1:s1,.../<master> */
  url: string;
  /** Port of the node the Sentinels currently name as primary. */
  currentPrimaryPort(): Promise<number>;
  stop(): Promise<void>;
}

export async function startSentinelSet(masterName = 'hermes'): Promise<SentinelSet> {
  const dir = mkdtempSync(join(tmpdir(), 'hermes-sentinel-'));
  const [pPort, rPort] = [await freePort(), await freePort()];
  // --dir: the replica writes the full-sync RDB it receives to disk.
  const primary = node(pPort, [...base(pPort), '--dir', dir]);
  const replica = node(rPort, [...base(rPort), '--dir', dir, '--replicaof', '127.0.0.1', String(pPort)]);
  await waitFor('replica in sync', async () =>
    /master_link_status:up/.test(await cli(rPort, 'INFO', 'replication')),
  );
  const sentinels: RedisNode[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    // Sentinel rewrites its config file, so each needs its own writable one.
    const conf = join(dir, `sentinel-${port}.conf`);
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${pPort} 2`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 10000`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n'),
    );
    sentinels.push(node(port, [conf, '--sentinel']));
  }
  const currentPrimaryPort = async () => {
    const out = await cli(sentinels[0]!.port, 'SENTINEL', 'get-master-addr-by-name', masterName);
    return Number(out.split('\n')[1]);
  };
  // Every Sentinel has found the replica and the other Sentinels.
  for (const s of sentinels) {
    await waitFor(`sentinel ${s.port} ready`, async () => {
      const info = await cli(s.port, 'SENTINEL', 'master', masterName);
      const field = (k: string) => {
        const lines = info.split('\n');
        return Number(lines[lines.indexOf(k) + 1]);
      };
      return field('num-slaves') >= 1 && field('num-other-sentinels') >= 2;
    });
  }
  return {
    masterName,
    primary,
    replica,
    sentinels,
    url: `redis+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`,
    currentPrimaryPort,
    async stop() {
      await Promise.all([primary, replica, ...sentinels].map((n) => n.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisCluster {
  nodes: RedisNode[];
  /** redis+cluster://127.0.0.1:p1,... (every node) */
  url: string;
  /** Port of the primary serving `slot` now, asked of a live node. */
  primaryOfSlot(slot: number): Promise<number>;
  /** Waits until a live primary other than `formerPort` serves `slot` (the failover is done); its port. */
  promotedPrimaryOfSlot(slot: number, formerPort: number, timeoutMs?: number): Promise<number>;
  /** Ports of the primaries now. */
  primaries(): Promise<number[]>;
  keySlot(key: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startCluster(): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'hermes-cluster-'));
  const nodes: RedisNode[] = [];
  for (let i = 0; i < 6; i++) {
    const port = await freePort();
    nodes.push(
      node(port, [
        ...base(port),
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        join(dir, `nodes-${port}.conf`),
        '--cluster-node-timeout',
        '1000',
        // Redis waits 5 s for more replicas before a diskless full sync.
        '--repl-diskless-sync-delay',
        '0',
        '--dir',
        dir,
      ]),
    );
  }
  for (const n of nodes)
    await waitFor(`node ${n.port} up`, async () => (await cli(n.port, 'PING')) === 'PONG');
  await run(
    CLI(),
    [
      '--cluster',
      'create',
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ],
    { timeout: 60_000 },
  );
  for (const n of nodes) {
    await waitFor(`node ${n.port} cluster_state:ok`, async () =>
      /cluster_state:ok/.test(await cli(n.port, 'CLUSTER', 'INFO')),
    );
  }
  // `--cluster create` returns before the replicas have their first full sync.
  await waitFor('3 replicas in sync', async () => {
    let synced = 0;
    for (const n of nodes) {
      const info = await cli(n.port, 'INFO', 'replication');
      if (/role:slave/.test(info) && /master_link_status:up/.test(info)) synced++;
    }
    return synced === 3;
  });
  const live = async (): Promise<number> => {
    for (const n of nodes) {
      if (n.process.exitCode !== null || n.process.signalCode !== null) continue;
      if ((await cli(n.port, 'PING').catch(() => '')) === 'PONG') return n.port;
    }
    throw new Error('no live cluster node');
  };
  /** CLUSTER SHARDS is verbose; CLUSTER NODES is one line per node. */
  const nodeLines = async () =>
    (await cli(await live(), 'CLUSTER', 'NODES'))
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length >= 8);
  const cluster: RedisCluster = {
    nodes,
    url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
    async primaryOfSlot(slot) {
      for (const f of await nodeLines()) {
        if (!f[2]!.includes('master') || f[2]!.includes('fail')) continue;
        for (const range of f.slice(8)) {
          const [a, b] = range.split('-').map(Number);
          if (slot >= a! && slot <= (b ?? a)!) return Number(f[1]!.split(':')[1]!.split('@')[0]);
        }
      }
      throw new Error(`no live primary serves slot ${slot}`);
    },
    async promotedPrimaryOfSlot(slot, formerPort, timeoutMs = 20_000) {
      let port = 0;
      await waitFor(
        `a new primary for slot ${slot}`,
        async () => {
          port = await cluster.primaryOfSlot(slot);
          return port !== formerPort;
        },
        timeoutMs,
      );
      return port;
    },
    async primaries() {
      return (await nodeLines())
        .filter((f) => f[2]!.includes('master') && !f[2]!.includes('fail'))
        .map((f) => Number(f[1]!.split(':')[1]!.split('@')[0]));
    },
    async keySlot(key) {
      return Number(await cli(await live(), 'CLUSTER', 'KEYSLOT', key));
    },
    async stop() {
      await Promise.all(nodes.map((n) => n.kill()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return cluster;
}
