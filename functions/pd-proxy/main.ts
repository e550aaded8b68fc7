// hermes-router pd-proxy: the leader of one PD group. Flags -> group ->
// HTTP server; SIGINT/SIGTERM close it. All logic is in src/pdproxy.
import pino from 'pino';
import { EndpointsFileSource } from '../../src/discovery/endpoints-file.js';
import { createPdProxy, createPdProxyServer } from '../../src/pdproxy/proxy.js';
import { defaultPdLabels, parsePodList, PdGroup, podsOfGroup } from '../../src/pdproxy/group.js';

export interface PdProxyFlags {
  port: number;
  host: string;
  prefill?: string;
  decode?: string;
  endpointsFile?: string;
  groupId?: string;
  pdLabelName: string;
  pdGroupLabelName: string;
  prefillValue: string;
  decodeValue: string;
  timeoutMs: number;
  servedHeaders?: boolean;
  connectTimeoutMs: number;
  logLevel: string;
}

export async function runPdProxy(flags: PdProxyFlags): Promise<number | void> {
  const logger = pino({ name: 'pd-proxy', level: flags.logLevel });
  const group = new PdGroup();
  let source: EndpointsFileSource | undefined;

  if (flags.endpointsFile) {
    if (!flags.groupId) {
      process.stderr.write(
        'pd-proxy: --endpoints-file needs --group-id (the openfuyao.com/pdGroupID of this group)\n',
      );
      return 2;
    }
    const labels = {
      ...defaultPdLabels,
      roleLabel: flags.pdLabelName,
      groupLabel: flags.pdGroupLabelName,
      prefillValue: flags.prefillValue,
      decodeValue: flags.decodeValue,
    };
    source = new EndpointsFileSource(flags.endpointsFile, {
      onError: (e) =>
        logger.error({ err: e.message }, 'endpoints file re-read failed; keeping the previous pods'),
    });
    try {
      await source.start((eps) => {
        const pods = podsOfGroup(eps, flags.groupId!, labels);
        group.update(pods);
        logger.info(
          { prefill: pods.prefill.map((p) => p.id), decode: pods.decode.map((p) => p.id) },
          'PD group pods',
        );
      });
    } catch (e) {
      process.stderr.write(`pd-proxy: ${(e as Error).message}\n`);
      return 1;
    }
  } else if (flags.prefill && flags.decode) {
    try {
      group.update({
        prefill: parsePodList('--prefill', flags.prefill),
        decode: parsePodList('--decode', flags.decode),
      });
    } catch (e) {
      process.stderr.write(`pd-proxy: ${(e as Error).message}\n`);
      return 2;
    }
  } else {
    process.stderr.write(
      'pd-proxy: name the group: --prefill HOST:PORT,... and --decode HOST:PORT,..., or --endpoints-file FILE --group-id ID\n',
    );
    return 2;
  }

  const proxy = createPdProxy({
    group,
    logger,
    timeoutMs: flags.timeoutMs,
    servedHeaders: flags.servedHeaders,
    connectTimeoutMs: flags.connectTimeoutMs,
  });
  const server = createPdProxyServer(proxy);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(flags.port, flags.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : flags.port;
  logger.info(
    {
      host: flags.host,
      port,
      prefill: group.list('prefill').map((p) => p.id),
      decode: group.list('decode').map((p) => p.id),
    },
    'pd-proxy listening',
  );

  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      logger.info({ signal: sig }, 'pd-proxy stopping');
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  await source?.stop();
  await proxy.close();
  return 0;
}
