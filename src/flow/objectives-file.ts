// Objectives from --objectives-file, re-read on change. The first read must
// succeed (start-up error naming file and YAML path); a later invalid file
// keeps the last good table and reports the error.
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import yaml from 'js-yaml';
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
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private last = '';

  constructor(
    private readonly file: string,
    private readonly opts: { pool?: PoolIdentity; onError?: (e: Error) => void; pollMs?: number } = {},
  ) {}

  async start(onChange: (table: ObjectiveTable) => void): Promise<void> {
    const first = readObjectivesFile(this.file, this.opts.pool);
    this.last = JSON.stringify(first);
    onChange(first);
    const reread = () => {
      try {
        const next = readObjectivesFile(this.file, this.opts.pool);
        const key = JSON.stringify(next);
        if (key === this.last) return;
        this.last = key;
        onChange(next);
      } catch (e) {
        this.opts.onError?.(e as Error);
      }
    };
    try {
      this.watcher = watch(this.file, { persistent: false }, () => setTimeout(reread, 20));
    } catch {
      // Polling below still sees changes.
    }
    this.timer = setInterval(reread, this.opts.pollMs ?? 1_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
  }
}
