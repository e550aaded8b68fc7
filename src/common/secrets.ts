// Secrets (Redis URL or password, admin token) come from a flag, an
// environment variable or a file. Files are the way for production: argv is
// readable by every local user in /proc/<pid>/cmdline, env by the process'
// owner; a mounted Kubernetes Secret file by neither. Errors name the flag
// and the file, never the value.
import { readFileSync } from 'node:fs';

export interface SecretSource {
  /** e.g. `--admin-token`. */
  flag: string;
  /** Default `<flag>-file`. */
  fileFlag?: string;
  value?: string;
  file?: string;
}

/** The secret's text: the value, or the file's content without its final newline. */
export function resolveSecret(s: SecretSource): string | undefined {
  const fileFlag = s.fileFlag ?? `${s.flag}-file`;
  if (s.value && s.file) throw new Error(`give ${s.flag} or ${fileFlag}, not both`);
  if (!s.file) return s.value || undefined;
  let text: string;
  try {
    text = readFileSync(s.file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new Error(`${fileFlag}: cannot read ${s.file} (${code})`);
  }
  const secret = text.replace(/\r?\n$/, '');
  if (!secret) throw new Error(`${fileFlag}: ${s.file} is empty`);
  return secret;
}
