// Routes requests through a real EPP over the raw ext_proc path, for the
// fault tests (the EPP itself is started with test/helpers/epp.ts).
import { destinationOf, type ExtProcClient } from '../../src/gateway/extproc-client.js';

export const COMPLETION_HEADERS: Array<[string, string]> = [
  [':method', 'POST'],
  [':path', '/v1/completions'],
  ['content-type', 'application/json'],
];

/** One request through ext_proc, response phase included; returns the chosen endpoint and how long the pick took. */
export async function routeOnce(
  client: ExtProcClient,
  prompt: string,
): Promise<{ endpoint: string; pickMs: number } | { status: number }> {
  const ex = client.open();
  const t0 = performance.now();
  const v = await ex.sendRequest({
    headers: COMPLETION_HEADERS,
    body: Buffer.from(JSON.stringify({ model: 'm', prompt })),
  });
  const pickMs = performance.now() - t0;
  if (v.kind === 'immediate') {
    ex.end();
    await ex.done;
    return { status: v.status };
  }
  await ex.sendResponseHeaders([
    [':status', '200'],
    ['content-type', 'text/event-stream'],
  ]);
  for await (const _ of ex.streamResponseBody([Buffer.from('data: [DONE]\n\n')])) void _;
  ex.end();
  await ex.done;
  return { endpoint: destinationOf(v)[0]!, pickMs };
}
