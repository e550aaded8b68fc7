// pino loggers: JSON lines by default (what log collectors want), pretty
// output for people with --log-format pretty.
import pino, { type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';

export function createLogger(opts: { level: string; format: LogFormat; name?: string }): Logger {
  const base = { level: opts.level, name: opts.name ?? 'hermes-router' };
  if (opts.format === 'pretty') {
    return pino({ ...base, transport: { target: 'pino-pretty', options: { colorize: true, destination: 2 } } });
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
