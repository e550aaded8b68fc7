// Objectives from --objectives-file, re-read on change. The first read must
// succeed (start-up error naming file and YAML path); a later invalid file
// keeps the last good table and reports the error.
import { readFileSync } from 'node:fs';
import yaml from 'js-yaml';
import { WatchedFile } from '../common/watched-file.js';
import { ConfigError } from '../config/errors.js';
import { objectiveTableOf, type ObjectiveTable, type PoolIdentity } from './objectives.js';

export function readObjectivesFile(file: string, pool?: PoolIdentity): ObjectiveTable {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, '', `a readable objectives file (${(e as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = yaml.load(text, { filename: file });
  } catch (e) {
    throw new ConfigError(file, '', `valid YAML: ${(e as Error).message}`);
  }
  return objectiveTableOf(doc, file, pool);
}

export interface ObjectivesSource {
  start(onChange: (table: ObjectiveTable) => void): Promise<void>;
  stop(): Promise<void>;
}

export class ObjectivesFileSource implements ObjectivesSource {
  private readonly watched: WatchedFile<ObjectiveTable>;

  constructor(
    file: string,
    opts: { pool?: PoolIdentity; onError?: (e: Error) => void; pollMs?: number } = {},
  ) {
    this.watched = new WatchedFile(file, (f) => readObjectivesFile(f, opts.pool), opts);
  }

  async start(onChange: (table: ObjectiveTable) => void): Promise<void> {
    this.watched.start(onChange);
  }

  async stop(): Promise<void> {
    this.watched.stop();
  }
}
