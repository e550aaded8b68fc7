// The EPP's listeners other than ext_proc's service itself: Prometheus
// /metrics on plain node:http, and gRPC binding (ext_proc, grpc.health.v1).
import { createServer, type Server as HttpServer } from 'node:http';
import type * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';

/** GET /metrics (any query) from `registry`; anything else 404. */
export function serveMetrics(registry: Registry): HttpServer {
  return createServer((req, res) => {
    if (req.url !== '/metrics' && !req.url?.startsWith('/metrics?')) {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: Error) => res.writeHead(500).end(`${e.message}\n`),
    );
  });
}

/** Resolves with the bound port (0 asks for any free one). */
export function bindGrpc(
  server: grpc.Server,
  address: string,
  creds: grpc.ServerCredentials,
): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port)));
  });
}
