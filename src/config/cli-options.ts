// One options schema per function: each option is a flag, an environment
// variable, a help line, a default written as a user would type it, and a
// zod schema turning the text into a typed, range-checked value. The same
// record gives commander its flags (with `--help` showing defaults and env
// names) and the function its typed options, so a default exists once.
import { Command, Option } from 'commander';
import { z } from 'zod';
import { parseDurationMs, parseSizeBytes } from '../common/duration.js';

export interface OptionSpec<T> {
  /** Commander syntax: `--grpc-port <n>`, `--secure-serving [bool]`, `--served-headers`. */
  flag: string;
  env: string;
  help: string;
  /** As typed on the command line; absent: the option is unset unless given. */
  default?: string;
  /** Raw text (undefined when unset) -> value; errors say what was expected. */
  schema: z.ZodType<T, string | boolean | undefined>;
  choices?: readonly string[];
  /** Value of an optional-argument flag given bare (`--secure-serving`). */
  preset?: string;
  /** Accepted for compatibility, not shown in --help. */
  hidden?: boolean;
  /** Never echoed in errors (passwords, tokens, URLs that may hold one). */
  secret?: boolean;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a heterogeneous record of specs
export type OptionSpecs = Record<string, OptionSpec<any>>;

export type OptionValues<S extends OptionSpecs> = { [K in keyof S]: z.output<S[K]['schema']> };

/** A bad flag or env value, naming the flag (never echoing a secret's value). */
export class OptionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptionError';
  }
}

export function defineOptions<S extends OptionSpecs>(specs: S): S {
  return specs;
}

const flagName = (spec: OptionSpec<unknown>) => spec.flag.split(/[ ,]/)[0]!;

/** The options as commander Options on `cmd`, in the order of the record. */
export function commandFor(name: string, summary: string, specs: OptionSpecs): Command {
  const cmd = new Command(name).description(summary);
  for (const spec of Object.values(specs)) {
    const o = new Option(spec.flag, spec.help).env(spec.env);
    if (spec.default !== undefined) o.default(spec.default);
    if (spec.choices) o.choices(spec.choices);
    if (spec.preset !== undefined) o.preset(spec.preset);
    if (spec.hidden) o.hideHelp();
    cmd.addOption(o);
  }
  return cmd;
}

/** Typed values from commander's raw ones; throws OptionError naming the flag. */
export function parseOptions<S extends OptionSpecs>(
  specs: S,
  cmd: Command,
  raw: Record<string, unknown> = cmd.opts(),
): OptionValues<S> {
  const byFlag = new Map(cmd.options.map((o) => [o.long, o.attributeName()]));
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) {
    const flag = flagName(spec);
    const text = raw[byFlag.get(flag) ?? key] as string | boolean | undefined;
    const parsed = spec.schema.safeParse(text);
    if (!parsed.success) {
      const got = spec.secret ? '' : `, got "${String(text)}"`;
      throw new OptionError(`${flag} (${spec.env}): ${parsed.error.issues[0]!.message}${got}`);
    }
    out[key] = parsed.data;
  }
  return out as OptionValues<S>;
}

/** Every option at its default (unset where there is none), as if no flag or env were given. */
export function optionDefaults<S extends OptionSpecs>(specs: S): OptionValues<S> {
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(specs)) out[key] = spec.schema.parse(spec.default);
  return out as OptionValues<S>;
}

/** Parses `args` (after the subcommand) against `specs`. */
export function parseArgs<S extends OptionSpecs>(
  name: string,
  summary: string,
  specs: S,
  args: string[],
): OptionValues<S> {
  const cmd = commandFor(name, summary, specs).parse(args, { from: 'user' });
  return parseOptions(specs, cmd);
}

// Value schemas. Each takes commander's raw value (string, `true` for a bare
// boolean flag, undefined when unset).

const text = z.union([z.string(), z.boolean(), z.undefined()]);

/** Unset or empty -> undefined. */
export const optionalString = () =>
  text.transform((v) => (v === undefined || v === '' || typeof v === 'boolean' ? undefined : v));

export const requiredString = () =>
  text.refine((v) => typeof v === 'string' && v !== '', 'expected a value').transform((v) => v as string);

export const port = (opts: { off?: boolean } = {}) =>
  text.transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (opts.off && n === -1) return undefined;
    if (!Number.isInteger(n) || n < 0 || n > 65535) {
      ctx.addIssue({ code: 'custom', message: `expected a port 0-65535${opts.off ? ' or -1 (off)' : ''}` });
      return z.NEVER;
    }
    return n;
  });

export const integer = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  text.transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `expected an integer in ${min}..${max}` });
      return z.NEVER;
    }
    return n;
  });

export const number = (min: number, max = Number.MAX_VALUE) =>
  text.transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min || n > max) {
      ctx.addIssue({ code: 'custom', message: `expected a number in ${min}..${max}` });
      return z.NEVER;
    }
    return n;
  });

/** `50ms`, `2s`, `1m` or bare milliseconds, at least `minMs`. */
export const duration = (minMs = 0) =>
  text.transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    let ms: number;
    try {
      ms = parseDurationMs(String(v));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a duration like 50ms, 2s or 1m' });
      return z.NEVER;
    }
    if (ms < minMs) {
      ctx.addIssue({ code: 'custom', message: `expected at least ${minMs}ms` });
      return z.NEVER;
    }
    return ms;
  });

/** `16Mi`, `1MB` or bare bytes. */
export const size = () =>
  text.transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    try {
      return parseSizeBytes(String(v));
    } catch {
      ctx.addIssue({ code: 'custom', message: 'expected a size like 16Mi or 1048576' });
      return z.NEVER;
    }
  });

const TRUE = new Set(['true', '1', 'yes', 'on']);
const FALSE = new Set(['false', '0', 'no', 'off', '']);

/** true/false/1/0/yes/no/on/off; a bare flag is true; unset is false. */
export const bool = () =>
  text.transform((v, ctx) => {
    if (v === undefined || typeof v === 'boolean') return v === true;
    const s = v.toLowerCase();
    if (TRUE.has(s)) return true;
    if (FALSE.has(s)) return false;
    ctx.addIssue({ code: 'custom', message: 'expected true or false' });
    return z.NEVER;
  });

/** A bare flag (`--served-headers`) or any env value turns it on. */
export const presence = () => text.transform((v) => v !== undefined && v !== false);

export const oneOf = <T extends string>(values: readonly T[]) =>
  text.transform((v, ctx) => {
    if (v === undefined || v === '') return undefined;
    if (!values.includes(v as T)) {
      ctx.addIssue({ code: 'custom', message: `expected one of ${values.join(', ')}` });
      return z.NEVER;
    }
    return v as T;
  });

/** A value that must be set (after defaults): wraps a schema whose unset is undefined. */
export function required<T>(schema: z.ZodType<T | undefined, string | boolean | undefined>) {
  return schema.transform((v, ctx) => {
    if (v === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected a value' });
      return z.NEVER;
    }
    return v;
  });
}

/** One function of the `hermes-router` CLI (functions/<fn>/main.ts exports it as `command`). */
export interface FunctionCommand {
  name: string;
  summary: string;
  /** Runs the function with its own flags; resolves to an exit code or runs until stopped. */
  run(args: string[]): Promise<number | void>;
}

/** A flag mistake: printed as `<function>: <message>`, exit code 2. */
export function usageError(fn: string, e: unknown): number {
  process.stderr.write(`${fn}: ${(e as Error).message}\n`);
  return 2;
}
