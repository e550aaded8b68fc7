// ZeroMQ's authentication hook (ZAP, RFC 27) used as a sender check: a
// socket given a `zapDomain` asks this handler about every peer that
// connects, with the peer's IP address, and the handshake fails unless the
// domain's check accepts it. The handler is one ROUTER per process at the
// fixed inproc address ZeroMQ calls; each bound KV socket registers its own
// domain. Peers of sockets without a domain (our connect-mode
// subscriptions, replay sockets) are accepted as before.
import { Router } from 'zeromq';

const ZAP_ENDPOINT = 'inproc://zeromq.zap.01';

type Check = (address: string) => boolean;

const checks = new Map<string, Check>();
let handler: Router | undefined;
let nextDomain = 0;

/** `::ffff:10.0.0.1` and `10.0.0.1` are the same peer. */
export function normalizeAddress(address: string): string {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  return a.toLowerCase().startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a.toLowerCase();
}

async function ensureHandler(): Promise<void> {
  if (handler) return;
  const sock = new Router({ linger: 0 });
  await sock.bind(ZAP_ENDPOINT);
  handler = sock;
  void (async () => {
    try {
      for await (const frames of sock) {
        // [routing id, empty, version, request id, domain, address, identity, mechanism, ...credentials]
        const [rid, empty, version, requestId, domain, address] = frames;
        if (!rid || !empty || !version || !requestId || !domain || !address) continue;
        const check = checks.get(domain.toString('utf8'));
        const ok = check === undefined || check(normalizeAddress(address.toString('utf8')));
        await sock.send([
          rid,
          empty,
          version,
          requestId,
          ok ? '200' : '400',
          ok ? 'OK' : 'not a discovered pod',
          '',
          '',
        ]);
      }
    } catch {
      // Closed.
    }
  })();
}

/** Registers a sender check; returns the zapDomain to give the socket (before it binds). */
export async function registerSenderCheck(check: Check): Promise<string> {
  await ensureHandler();
  const domain = `hermes-kv-${process.pid}-${nextDomain++}`;
  checks.set(domain, check);
  return domain;
}

export function unregisterSenderCheck(domain: string): void {
  checks.delete(domain);
  if (checks.size === 0 && handler) {
    handler.close();
    handler = undefined;
  }
}
