import { createServer } from 'node:net';

// Ports handed out come from below Linux's ephemeral range (32768-60999 by
// default). A port the OS picked with listen(0) is an ephemeral one, and
// between our check and the server's bind any outgoing connection of any
// test (Redis clients, HTTP keep-alive pools) may take it as its source port:
// that race made EADDRINUSE flakes under load. Below the range only another
// listener can collide. Each vitest worker gets its own slice of the range
// (VITEST_POOL_ID is unique among the workers running at once) and walks it in
// order, so a port one file keeps unused on purpose (a "dead" endpoint) is
// never handed to a test running beside it.
const LOW = 20_000;
// Redis Cluster nodes also bind port + 10000 (their bus), which must stay below the range too.
const HIGH = 22_700;
const SLICES = 9;
const SLICE = Math.floor((HIGH - LOW) / SLICES);
const sliceStart = LOW + (Number(process.env.VITEST_POOL_ID ?? 0) % SLICES) * SLICE;
let next = Math.floor(Math.random() * SLICE);

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A TCP port free on 127.0.0.1 right now, outside the ephemeral range. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < SLICE; attempt++) {
    const port = sliceStart + (next++ % SLICE);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port found in ${sliceStart}-${sliceStart + SLICE - 1} on 127.0.0.1`);
}
