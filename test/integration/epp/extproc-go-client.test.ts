// The EPP against a client that shares no code with it: grpc-go with
// Envoy's generated ext_proc types (test/extproc-go-client, built by
// .ci/tools.sh as EXTPROC_GO_CLIENT_BIN from go-control-plane), on both
// server transports: the routed header reply, envoy.lb metadata, the body
// streamed back byte for byte (one chunk, and 220 KB in 16 KiB chunks), the
// response passed through, a clean OK at the end.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXTPROC_TRANSPORTS } from '../../../src/extproc/transports.js';
import { endpointsYaml, startEpp, type Epp } from '../../helpers/epp.js';
import { stopAllSpawned } from '../../helpers/spawn.js';

function bin(): string {
  const b = process.env.EXTPROC_GO_CLIENT_BIN;
  if (!b || !existsSync(b))
    throw new Error(
      `EXTPROC_GO_CLIENT_BIN (${b ?? 'unset'}) must name the built test/extproc-go-client: run \`source .ci/tools.sh\` or \`npm test\``,
    );
  return b;
}

interface GoResult {
  replies: string[];
  setHeaders: Record<string, string>;
  metadata: Record<string, string>;
  bodyBack: number;
  bodyEqual: boolean;
  responseBack: number;
  status: string;
}

afterAll(() => stopAllSpawned());

describe.each(EXTPROC_TRANSPORTS)("grpc-go with Envoy's types against the EPP on %s", (transport) => {
  let epp: Epp;
  beforeAll(async () => {
    epp = await startEpp({
      endpoints: endpointsYaml([{ name: 'a', port: 8000 }]),
      args: ['--extproc-transport', transport, '--secure-serving', 'false', '--log-level', 'warn'],
    });
  });
  afterAll(() => epp.stop());

  for (const size of [2048, 220_000])
    it(`a ${size}-byte body`, () => {
      const run = spawnSync(bin(), [`127.0.0.1:${epp.grpcPort}`, String(size)], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      expect(run.stderr).toBe('');
      expect(run.status).toBe(0);
      const r = JSON.parse(run.stdout) as GoResult;
      expect(r.status).toBe('OK');
      expect(r.replies[0]).toBe('request_headers');
      expect(r.setHeaders['x-gateway-destination-endpoint']).toBe('127.0.0.1:8000');
      expect(r.metadata['envoy.lb/x-gateway-destination-endpoint']).toBe('127.0.0.1:8000');
      expect(r.bodyEqual).toBe(true);
      expect(r.bodyBack).toBeGreaterThanOrEqual(size - 40);
      expect(r.replies.filter((x) => x === 'request_body').length).toBe(Math.ceil(r.bodyBack / 62_000));
      expect(r.replies.slice(-2)).toEqual(['response_headers', 'response_body']);
      expect(r.responseBack).toBeGreaterThan(0);
    });
});
