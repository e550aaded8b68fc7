import type { z } from 'zod';

/**
 * A configuration mistake: which file, where in it (a YAML path such as
 * `plugins[1].parameters.alpha`), and what was expected there.
 */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly yamlPath: string,
    readonly expected: string,
  ) {
    super(`${file}: ${yamlPath || '<root>'}: ${expected}`);
    this.name = 'ConfigError';
  }
}

/** Renders a path like ['plugins', 1, 'parameters', 'alpha'] as `plugins[1].parameters.alpha`. */
export function yamlPath(parts: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of parts) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_$][\w$-]*$/.test(p)) out += out ? `.${p}` : p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

export function joinPath(prefix: string, rest: string): string {
  if (!prefix) return rest;
  if (!rest) return prefix;
  return rest.startsWith('[') ? prefix + rest : `${prefix}.${rest}`;
}

/** The first zod issue as a ConfigError under `prefix`. */
export function fromZodError(file: string, prefix: string, err: z.ZodError): ConfigError {
  const issue = err.issues[0]!;
  let path = yamlPath(issue.path);
  let expected = issue.message;
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0]!;
    path = joinPath(path, yamlPath([key]));
    expected = `unknown field "${key}"`;
  }
  return new ConfigError(file, joinPath(prefix, path), expected);
}
