// Every shipped profile behind a gateway that reads one address: the example
// profiles, the chart's built-in default and the compose profile, each run
// by a real EPP over six pods (two PD groups), answer one `ip:port` in the
// destination header and the same value in the envoy.lb metadata, so
// agentgateway and Envoy ORIGINAL_DST (one address) and Istio / Envoy's
// override-host policy (metadata) all route them (docs/extproc.md, "Gateways").
import { readdirSync, readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerOf, type ContinueVerdict } from '../../../src/gateway/extproc-client.js';
import { fromStruct } from '../../../src/extproc/messages.js';
import { endpointsYaml, startEpp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';

const ROOT = join(import.meta.dirname, '../../..');
const DEST = 'x-gateway-destination-endpoint';

interface ExampleValues {
  inferencepool: {
    inferenceExtension: { pluginsConfigFile: string; pluginsCustomConfig: Record<string, string> };
  };
}

/** [label, EndpointPickerConfig YAML] of every profile the project ships. */
function shippedProfiles(): Array<[string, string]> {
  const dir = join(ROOT, 'examples/profiles');
  const out: Array<[string, string]> = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => {
      const ext = (load(readFileSync(join(dir, f), 'utf8')) as ExampleValues).inferencepool
        .inferenceExtension;
      return [`examples/profiles/${f}`, ext.pluginsCustomConfig[ext.pluginsConfigFile]!];
    });
  for (const f of [
    'charts/hermes-router/files/default-plugins.yaml',
    'deploy/compose/epp-kv-cache-aware.yaml',
  ])
    out.push([f, readFileSync(join(ROOT, f), 'utf8')]);
  return out;
}

let servers: FakeModel[] = [];
let endpoints: string;

beforeAll(async () => {
  servers = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => fakeModel({ waiting: i % 3, kv: 0.1 * i })));
  const roles = ['leader', 'prefill', 'decode'];
  endpoints = endpointsYaml(
    servers.map((s, i) => ({
      name: `pod-${i}`,
      port: s.port,
      labels: {
        'openfuyao.com/pdRole': roles[i % 3]!,
        'openfuyao.com/pdGroupID': `group-${Math.floor(i / 3)}`,
      },
    })),
  );
});

afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

describe('shipped profiles answer one address (header = metadata)', () => {
  const profiles = shippedProfiles();

  it('covers every example profile, the chart default and the compose profile', () => {
    expect(profiles.length).toBeGreaterThanOrEqual(8);
  });

  it.each(profiles)('%s', async (_label, config) => {
    const epp = await startEpp({
      endpoints,
      config,
      // The KV-aware profiles name a cache-indexer Service that does not
      // resolve here: scheduling degrades, requests are still routed.
      args: ['--refresh-metrics-interval', '50ms', '--log-level', 'error'],
      client: { deadlineMs: 15_000 },
    });
    try {
      const ids = new Set(servers.map((s) => s.id));
      for (let i = 0; i < 4; i++) {
        const body = Buffer.from(
          JSON.stringify({ model: 'm', messages: [{ role: 'user', content: `q${i}` }] }),
        );
        const ex = epp.client.open();
        const v = await ex.sendRequest({
          headers: [
            [':method', 'POST'],
            [':path', '/v1/chat/completions'],
            ['content-type', 'application/json'],
          ],
          body,
        });
        expect(v.kind, v.kind === 'immediate' ? `${v.status} ${v.body.toString()}` : '').toBe('continue');
        const c = v as ContinueVerdict;
        const header = headerOf(c.headers, DEST)!;
        // One socket address, as agentgateway and ORIGINAL_DST parse it.
        const m = /^(.+):(\d{1,5})$/.exec(header);
        expect(m, header).not.toBeNull();
        expect(isIP(m![1]!), header).toBe(4);
        expect(ids.has(header), header).toBe(true);
        const meta = c.replies.map((r) => fromStruct(r.dynamic_metadata)['envoy.lb']).find(Boolean);
        expect(meta).toEqual({ [DEST]: header });
        ex.cancel();
      }
    } finally {
      await epp.stop();
    }
  });
});
