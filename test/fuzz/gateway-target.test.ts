// Issue 17 (low): gateway-dev appended an absolute-form request target
// (`POST http://host/path`) to the pod's address, the URL failed, and the
// 502 it answered named the internal pod. Now an absolute target is served
// by its path, other forms get a 400, and no error names an endpoint.
import { connect } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointsYaml, startEpp, type Epp } from '../helpers/epp.js';
import { fakeModel, type FakeModel } from '../helpers/fake-model-server.js';
import { freePort } from '../helpers/ports.js';
import { spawnFn, stopAllSpawned } from '../helpers/spawn.js';

let model: FakeModel;
let epp: Epp;
let gwPort = 0;

beforeAll(async () => {
  model = await fakeModel();
  epp = await startEpp({
    endpoints: endpointsYaml([{ name: 'm0', port: model.port }]),
    args: ['--log-level', 'warn'],
  });
  gwPort = await freePort();
  await spawnFn(
    'gateway-dev',
    [
      '--port',
      String(gwPort),
      '--host',
      '127.0.0.1',
      '--epp',
      `127.0.0.1:${epp.grpcPort}`,
      '--log-level',
      'warn',
    ],
    { ready: { http: `http://127.0.0.1:${gwPort}/_gateway/healthz` } },
  );
});

afterAll(async () => {
  await model?.close();
  await stopAllSpawned();
});

/** One raw HTTP/1.1 request (node:http cannot send every target form); the status line and body. */
function raw(target: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(gwPort, '127.0.0.1');
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('error', reject);
    s.on('close', () => {
      const text = Buffer.concat(parts).toString('utf8');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
    // Not end(): a half-closed client may see the server drop the connection unanswered.
    s.write(
      `POST ${target} HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\nconnection: close\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  });
}

const BODY = JSON.stringify({ model: 'm', prompt: 'hello' });

describe('gateway-dev request targets', () => {
  it('an absolute-form target is served by its path; no answer names an internal endpoint', async () => {
    const ok = await raw('http://anything.example:1234/v1/completions', BODY);
    expect(ok.status, ok.text).toBe(200);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.webUrl({ withQueryParameters: true }),
          fc.constantFrom('*', 'example.com:443', 'http://', 'ftp://x/v1/completions', '//x/v1/completions'),
          fc.string({ minLength: 1, maxLength: 30 }).filter((t) => !/[\s\r\n]/.test(t)),
        ),
        async (target) => {
          const r = await raw(target, BODY);
          expect(r.status, r.text).toBeGreaterThan(0);
          expect(r.status, r.text).toBeLessThan(500);
          expect(r.text).not.toContain(model.id);
          expect(r.text).not.toContain(`:${model.port}`);
        },
      ),
      { numRuns: 60, interruptAfterTimeLimit: 10_000, markInterruptAsFailure: false },
    );
  }, 30_000);
});
