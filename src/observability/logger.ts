// pino loggers: JSON lines by default (what log collectors want), pretty
// output for people with --log-format pretty. Secrets never reach a log
// line: fields that may hold one are censored by pino wherever they appear
// (one level deep), a Redis URL keeping everything but its password.
import pino, { type Logger } from 'pino';
import { redactUrl } from '../state/redis-store.js';

export type LogFormat = 'json' | 'pretty';

const SECRET_FIELDS = ['redisUrl', 'adminToken', 'token', 'password', 'authorization'];
export const REDACT_PATHS = [...SECRET_FIELDS, ...SECRET_FIELDS.map((f) => `*.${f}`)];

/** What a censored field becomes: a URL without its password, anything else masked. */
export function censor(value: unknown, path: string[]): unknown {
  if (value === undefined || value === null) return value;
  if (path[path.length - 1] === 'redisUrl' && typeof value === 'string') return redactUrl(value);
  return '***';
}

export function createLogger(opts: { level: string; format: LogFormat; name?: string }): Logger {
  const base = {
    level: opts.level,
    name: opts.name ?? 'hermes-router',
    redact: { paths: REDACT_PATHS, censor },
  };
  if (opts.format === 'pretty') {
    return pino({
      ...base,
      transport: { target: 'pino-pretty', options: { colorize: true, destination: 2 } },
    });
  }
  return pino(base, pino.destination({ dest: 2, sync: false }));
}

/** A logger that drops everything (tests, benchmarks). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
