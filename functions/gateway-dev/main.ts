// hermes-router gateway-dev: the local Envoy stand-in. Flags -> gateway ->
// HTTP server; SIGINT/SIGTERM close it. All logic is in src/gateway.
import { createServer } from 'node:http';
import pino from 'pino';
import { createGateway, type ProcessingMode } from '../../src/gateway/gateway.js';

export interface GatewayDevFlags {
  port: number;
  host: string;
  epp: string;
  eppTls: boolean;
  mode: ProcessingMode;
  timeoutMs: number;
  eppTimeoutMs: number;
  connectTimeoutMs: number;
  destinationHeader: string;
  logLevel: string;
}

export async function runGatewayDev(flags: GatewayDevFlags): Promise<number | void> {
  const logger = pino({ name: 'gateway-dev', level: flags.logLevel });
  const gateway = createGateway({
    epp: flags.epp,
    eppTls: flags.eppTls,
    mode: flags.mode,
    timeoutMs: flags.timeoutMs,
    eppTimeoutMs: flags.eppTimeoutMs,
    connectTimeoutMs: flags.connectTimeoutMs,
    destinationHeader: flags.destinationHeader,
    logger,
  });
  const server = createServer((req, res) => gateway.handle(req, res));
  // Long SSE answers must not be cut by Node's default request timeout.
  server.requestTimeout = 0;
  server.headersTimeout = 60_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(flags.port, flags.host, () => resolve());
    });
  } catch (e) {
    process.stderr.write(
      `gateway-dev: cannot listen on ${flags.host}:${flags.port}: ${(e as Error).message}\n`,
    );
    await gateway.close();
    return 1;
  }
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : flags.port;
  logger.info({ host: flags.host, port, epp: flags.epp, mode: flags.mode }, 'gateway-dev listening');

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info({ signal: sig, stats: gateway.stats.snapshot() }, 'gateway-dev stopping');
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await gateway.close();
  return 0;
}
