// Redis URLs: parsing and redaction, with no client library loaded (the
// options of every function log a redacted URL before anything connects).
//
// Secrets: the user info is everything between `://` and the last `@` (host
// lists, master names and databases never hold one), so a password can never
// spill into a host name or a log line. A password holding an unencoded `/`,
// `@`, `?`, `#` or a bad `%` escape is refused with an error that says which
// character to encode and never prints the password.

export interface ParsedRedisUrl {
  kind: 'standalone' | 'sentinel' | 'cluster';
  tls: boolean;
  hosts: Array<{ host: string; port: number }>;
  username?: string;
  password?: string;
  db?: number;
  masterName?: string;
}

const FORMS =
  'expected redis[s]://[user:pass@]host:port[/db], redis[s]+sentinel://[:pass@]host:port,.../master[/db] or redis[s]+cluster://[:pass@]host:port,...';

/** A Redis URL that cannot be used; its message never holds the password. */
export class RedisUrlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedisUrlError';
  }
}

interface UrlParts {
  scheme: string;
  mode: string | undefined;
  auth: string | undefined;
  rest: string;
}

function splitUrl(url: string): UrlParts | undefined {
  const m = /^(rediss?)(?:\+(sentinel|cluster))?:\/\//i.exec(url);
  if (!m) return undefined;
  const after = url.slice(m[0].length);
  const at = after.lastIndexOf('@');
  return {
    scheme: m[1]!.toLowerCase(),
    mode: m[2]?.toLowerCase(),
    auth: at < 0 ? undefined : after.slice(0, at),
    rest: at < 0 ? after : after.slice(at + 1),
  };
}

function decodeSecret(part: string, what: string): string {
  const bad = /[/@?#]/.exec(part);
  if (bad) {
    const code = `%${bad[0].charCodeAt(0).toString(16).toUpperCase()}`;
    throw new RedisUrlError(
      `the ${what} in the Redis URL holds an unencoded "${bad[0]}": percent-encode it as ${code}, or give the password in REDIS_PASSWORD`,
    );
  }
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RedisUrlError(
      `the ${what} in the Redis URL holds a "%" that is not a %XX escape: encode "%" as %25, or give the password in REDIS_PASSWORD`,
    );
  }
}

export function parseRedisUrl(url: string): ParsedRedisUrl {
  const parts = splitUrl(url.trim());
  if (!parts) throw new RedisUrlError(`invalid Redis URL ${JSON.stringify(redactUrl(url))}: ${FORMS}`);
  const m = /^([^/?#]+)(\/[^?#]*)?$/.exec(parts.rest);
  if (!m) throw new RedisUrlError(`invalid Redis URL ${JSON.stringify(redactUrl(url))}: ${FORMS}`);
  const [, hostList, path] = m;
  const out: ParsedRedisUrl = {
    kind: (parts.mode as 'sentinel' | 'cluster' | undefined) ?? 'standalone',
    tls: parts.scheme === 'rediss',
    hosts: hostList!.split(',').map((h) => parseHost(h, url)),
  };
  const auth = parts.auth;
  if (auth) {
    const i = auth.indexOf(':');
    if (i < 0) {
      // redis://secret@host is a password, as in redis-cli.
      out.password = decodeSecret(auth, 'password');
    } else {
      const user = decodeSecret(auth.slice(0, i), 'user name');
      if (user) out.username = user;
      out.password = decodeSecret(auth.slice(i + 1), 'password');
    }
  }
  const segs = (path ?? '').split('/').filter(Boolean);
  if (out.kind === 'sentinel') {
    out.masterName = segs.shift();
    if (!out.masterName)
      throw new RedisUrlError('Redis Sentinel URL needs a master name: redis+sentinel://host:port/<master>');
  }
  if (segs.length > 0) {
    if (out.kind === 'cluster')
      throw new RedisUrlError('Redis Cluster has no databases: drop the /db from the URL');
    const db = Number(segs[0]);
    if (!Number.isInteger(db) || db < 0)
      throw new RedisUrlError(`invalid Redis database ${JSON.stringify(segs[0])}`);
    out.db = db;
  }
  if (out.kind === 'standalone' && out.hosts.length !== 1) {
    throw new RedisUrlError(
      'a redis:// URL names one host; use redis+sentinel:// or redis+cluster:// for several',
    );
  }
  return out;
}

function parseHost(h: string, url: string): { host: string; port: number } {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(\d{1,5}))?$/.exec(h);
  if (!m)
    throw new RedisUrlError(
      `invalid host ${JSON.stringify(h)} in Redis URL ${JSON.stringify(redactUrl(url))}`,
    );
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2] ? Number(m[2]) : 6379 };
}

/**
 * The URL with its user info masked, for logs and errors: everything between
 * `://` and the last `@` becomes `***` (`:***` or `user:***` when a plain user name is given).
 */
export function redactUrl(url: string): string {
  const s = url.indexOf('://');
  const at = url.lastIndexOf('@');
  if (s < 0 || at < s) return url;
  const auth = url.slice(s + 3, at);
  const i = auth.indexOf(':');
  const user = i > 0 ? auth.slice(0, i) : '';
  const shown = i === 0 ? ':***' : /^[A-Za-z0-9._-]+$/.test(user) ? `${user}:***` : '***';
  return `${url.slice(0, s + 3)}${shown}${url.slice(at)}`;
}
