// Static discovery from an endpoints file (INTERFACES.md), re-read when the
// file changes. A file that becomes invalid keeps the last good set and
// reports the error; the first read must succeed.
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { z } from 'zod';
import { hostPort } from '../common/net.js';
import { WatchedFile, type WatchedFileOptions } from '../common/watched-file.js';
import { ConfigError, fromZodError } from '../config/errors.js';
import type { Endpoint } from '../scheduling/types.js';
import type { EndpointSource } from './types.js';

const port = z.number({ error: 'expected a port number' }).int().min(1).max(65535);

const endpointsFileSchema = z.strictObject({
  endpoints: z.array(
    z.strictObject({
      name: z.string().min(1, 'expected a non-empty name').optional(),
      address: z.string({ error: 'expected an IP address or host name' }).min(1),
      port,
      labels: z.record(z.string(), z.string({ error: 'expected label values as strings' })).optional(),
      metricsPort: port.optional(),
      metricsPath: z.string().startsWith('/', 'expected a path starting with /').optional(),
      kvEventsPort: port.optional(),
      kvEventsReplayPort: port.optional(),
    }),
    { error: 'expected a list of endpoints' },
  ),
});

export function parseEndpointsFile(text: string, file: string): Endpoint[] {
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: file });
  } catch (e) {
    throw new ConfigError(file, '', `valid YAML: ${(e as Error).message}`);
  }
  const parsed = endpointsFileSchema.safeParse(doc);
  if (!parsed.success) throw fromZodError(file, '', parsed.error);
  const seen = new Set<string>();
  return parsed.data.endpoints.map((e, i) => {
    const id = hostPort(e.address, e.port);
    if (seen.has(id))
      throw new ConfigError(file, `endpoints[${i}]`, `a unique address:port, ${id} is listed twice`);
    seen.add(id);
    const ep: Endpoint = { id, name: e.name ?? id, address: e.address, port: e.port, labels: e.labels ?? {} };
    if (e.metricsPort !== undefined) ep.metricsPort = e.metricsPort;
    if (e.metricsPath !== undefined) ep.metricsPath = e.metricsPath;
    if (e.kvEventsPort !== undefined) ep.kvEventsPort = e.kvEventsPort;
    if (e.kvEventsReplayPort !== undefined) ep.kvEventsReplayPort = e.kvEventsReplayPort;
    return ep;
  });
}

export function readEndpointsFile(file: string): Endpoint[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `a readable endpoints file (${(e as Error).message})`);
  }
  return parseEndpointsFile(text, file);
}

export type FileSourceOptions = WatchedFileOptions;

export class EndpointsFileSource implements EndpointSource {
  readonly kind = 'file' as const;
  private readonly watched: WatchedFile<Endpoint[]>;

  constructor(file: string, opts: FileSourceOptions = {}) {
    this.watched = new WatchedFile(file, readEndpointsFile, opts);
  }

  async start(onChange: (endpoints: Endpoint[]) => void): Promise<void> {
    this.watched.start(onChange);
  }

  async stop(): Promise<void> {
    this.watched.stop();
  }
}
