// buildPdProxy(config, deps): one PD group's leader, built then started:
// the group's pods (from flags or an endpoints file) -> proxy -> HTTP server.
// The entry (functions/pd-proxy/main.ts) parses flags and handles signals.
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { closeHttp, listenHttp } from '../common/http-server.js';
import { EndpointsFileSource } from '../discovery/endpoints-file.js';
import { defaultPdLabels, parsePodList, PdGroup, podsOfGroup } from './group.js';
import type { PdProxyConfig } from './options.js';
import { createPdProxy, createPdProxyServer } from './proxy.js';

export interface PdProxyApp {
  readonly group: PdGroup;
  /** Reads the group's pods, listens; resolves with the HTTP port. */
  start(): Promise<number>;
  stop(): Promise<void>;
}

export function buildPdProxy(flags: PdProxyConfig, deps: { logger: Logger }): PdProxyApp {
  const logger = deps.logger;
  const group = new PdGroup();
  let source: EndpointsFileSource | undefined;
  const proxy = createPdProxy({
    group,
    logger,
    timeoutMs: flags.timeoutMs,
    servedHeaders: flags.servedHeaders,
    connectTimeoutMs: flags.connectTimeoutMs,
  });
  let server: Server | undefined;

  const readGroup = async () => {
    if (flags.endpointsFile) {
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
      await source.start((eps) => {
        const pods = podsOfGroup(eps, flags.groupId!, labels);
        group.update(pods);
        logger.info(
          { prefill: pods.prefill.map((p) => p.id), decode: pods.decode.map((p) => p.id) },
          'PD group pods',
        );
      });
    } else {
      group.update({
        prefill: parsePodList('--prefill', flags.prefill!),
        decode: parsePodList('--decode', flags.decode!),
      });
    }
  };

  return {
    group,
    async start() {
      await readGroup();
      server = createPdProxyServer(proxy);
      const port = await listenHttp(server, flags.port, flags.host);
      logger.info(
        {
          host: flags.host,
          port,
          prefill: group.list('prefill').map((p) => p.id),
          decode: group.list('decode').map((p) => p.id),
        },
        'pd-proxy listening',
      );
      return port;
    },
    async stop() {
      await closeHttp(server);
      await source?.stop();
      await proxy.close();
    },
  };
}
