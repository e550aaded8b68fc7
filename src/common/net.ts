// host:port in the one form the whole router writes and reads: `ip:port`,
// an IPv6 literal in brackets (`[fd00::1]:8000`). Endpoint ids, listen
// addresses, PD headers and indexer URLs all use it.

export interface HostPort {
  /** `host:port`, IPv6 bracketed. */
  id: string;
  host: string;
  port: number;
}

export function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Splits `host:port` / `[v6]:port` (port 1-65535); undefined when it is not one. */
export function parseHostPort(text: string): HostPort | undefined {
  const s = text.trim();
  const m = /^\[([0-9a-fA-F:.]+)\]:(\d{1,5})$/.exec(s) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  const host = m[1]!;
  return { id: hostPort(host, port), host, port };
}
