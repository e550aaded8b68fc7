// Listening and closing node:http servers the same way in every function:
// each resolves to the bound port (0 asks for any free one), and closing also
// drops idle keep-alive connections so a stop does not wait for clients.
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';

export function listenHttp(server: HttpServer, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Resolves once a server started elsewhere (hono's serve()) is listening. */
export function listeningPort(server: HttpServer): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    if (server.listening) resolve((server.address() as AddressInfo).port);
    server.once('listening', () => resolve((server.address() as AddressInfo).port));
    server.once('error', reject);
  });
}

export function closeHttp(server: HttpServer | undefined): Promise<void> {
  if (!server) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}
