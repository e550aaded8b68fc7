// Model rewrites as Envoy sees them (GIE): an InferenceModelRewrite rule from
// --objectives-file, or the x-gateway-model-name-rewrite header, changes the
// body's `model` before scheduling (Content-Length follows); the response has
// the client's model name put back, in FULL_DUPLEX_STREAMED and BUFFERED modes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { headerOf, type ContinueVerdict, type RequestVerdict } from '../../../src/gateway/extproc-client.js';
import type { RequestBodyMode, ResponseBodyMode } from '../../../src/gateway/extproc-client.js';
import { endpointsYaml, startEpp, tempDir, type Epp } from '../../helpers/epp.js';
import { fakeModel, type FakeModel } from '../../helpers/fake-model-server.js';

let server: FakeModel;
let epp: Epp;

const rewrite = {
  apiVersion: 'inference.networking.x-k8s.io/v1alpha2',
  kind: 'InferenceModelRewrite',
  metadata: { name: 'qwen-ab' },
  spec: {
    poolRef: { name: 'pool' },
    rules: [
      {
        matches: [{ model: { type: 'Exact', value: 'qwen' } }],
        targets: [{ modelRewrite: 'qwen-v2', weight: 100 }],
      },
    ],
  },
};

function cont(v: RequestVerdict): ContinueVerdict {
  if (v.kind !== 'continue')
    throw new Error(`expected a routed request, got ${v.status}: ${v.body.toString()}`);
  return v;
}

async function exchange(
  model: string,
  modes: { requestBodyMode: RequestBodyMode; responseBodyMode: ResponseBodyMode },
  extra: Array<[string, string]> = [],
) {
  const ex = epp.client.open(modes);
  const body = Buffer.from(JSON.stringify({ model, messages: [{ role: 'user', content: 'héllo' }] }));
  const v = cont(
    await ex.sendRequest({
      headers: [
        [':method', 'POST'],
        [':path', '/v1/chat/completions'],
        ['content-type', 'application/json'],
        ['content-length', String(body.length)],
        ...extra,
      ],
      body,
    }),
  );
  return { ex, v };
}

beforeAll(async () => {
  server = await fakeModel({ waiting: 0, kv: 0.1 });
  const file = join(tempDir('hermes-rewrite-'), 'objectives.yaml');
  writeFileSync(file, yaml.dump([rewrite]));
  epp = await startEpp({
    endpoints: endpointsYaml([{ name: 'vllm-0', port: server.port }]),
    args: ['--objectives-file', file, '--log-level', 'warn'],
    client: { deadlineMs: 10_000 },
  });
  await epp.client.waitForReady();
});

afterAll(async () => {
  const code = await epp?.stop();
  await server?.close();
  expect(code).toBe(0);
});

describe('InferenceModelRewrite and x-gateway-model-name-rewrite', () => {
  test.each([
    ['FULL_DUPLEX_STREAMED', 'FULL_DUPLEX_STREAMED'],
    ['BUFFERED', 'BUFFERED'],
  ] as const)(
    '%s: a rule rewrites the body model, the response gets the asked-for name back',
    async (requestBodyMode, responseBodyMode) => {
      const { ex, v } = await exchange('qwen', { requestBodyMode, responseBodyMode });
      const sent = JSON.parse(v.body.toString()) as { model: string; messages: unknown[] };
      expect(sent.model).toBe('qwen-v2');
      expect(sent.messages).toEqual([{ role: 'user', content: 'héllo' }]);
      expect(headerOf(v.headers, 'content-length')).toBe(String(v.body.length));
      const headers = await ex.sendResponseHeaders([
        [':status', '200'],
        ['content-type', 'application/json'],
        ['content-length', '60'],
      ]);
      expect(headerOf(headers, 'content-length')).toBeUndefined();
      const upstream = Buffer.from('{"id":"c1","object":"chat.completion","model":"qwen-v2","choices":[]}');
      const out: Buffer[] = [];
      for await (const c of ex.streamResponseBody([upstream])) out.push(c);
      expect(Buffer.concat(out).toString()).toBe(
        '{"id":"c1","object":"chat.completion","model":"qwen","choices":[]}',
      );
      ex.end();
    },
  );

  test('the rewrite header names the target; models without a rule pass unchanged', async () => {
    const a = await exchange(
      'llama',
      { requestBodyMode: 'FULL_DUPLEX_STREAMED', responseBodyMode: 'FULL_DUPLEX_STREAMED' },
      [['x-gateway-model-name-rewrite', 'llama-lora-7']],
    );
    expect(JSON.parse(a.v.body.toString()).model).toBe('llama-lora-7');
    a.ex.cancel();
    const b = await exchange('llama', {
      requestBodyMode: 'FULL_DUPLEX_STREAMED',
      responseBodyMode: 'FULL_DUPLEX_STREAMED',
    });
    expect(JSON.parse(b.v.body.toString()).model).toBe('llama');
    b.ex.cancel();
  });

  test('rule decisions are counted as GIE names them', async () => {
    expect(
      await epp.metric(
        'inference_extension_model_rewrite_decisions_total',
        'model_rewrite_name="qwen-ab"',
        'target_model="qwen-v2"',
      ),
    ).toBe(2);
  });
});
