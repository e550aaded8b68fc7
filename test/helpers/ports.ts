import { createServer } from 'node:net';

// Ports handed out come from below Linux's ephemeral range (32768-60999 by
// default). A port the OS picked with listen(0) is an ephemeral one, and
// between our check and the server's bind any outgoing connection of any
// test (Redis clients, HTTP keep-alive pools) may take it as its source port:
// that race made EADDRINUSE flakes under load. Below the range only another
// listener can collide, and the in-process set rules out handing one twice.
const LOW = 20_000;
// Redis Cluster nodes also bind port + 10000 (their bus), which must stay below the range too.
const HIGH = 22_700;
const handedOut = new Set<number>();

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
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (handedOut.has(port)) continue;
    if (await canListen(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error(`no free port found in ${LOW}-${HIGH} on 127.0.0.1`);
}
