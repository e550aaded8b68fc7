// Keeps docs/plugins.md honest against the code: one section per registered
// plugin type, no section for a type that does not exist, and every
// parameter of a plugin's zod schema named in its section's parameter
// table with the schema's default. A plugin or parameter added without
// documentation, or a default changed in one place only, fails here.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { builtinRegistry } from '../../../src/plugins/index.js';

const DOC_URL = new URL('../../../docs/plugins.md', import.meta.url);

interface Section {
  type: string;
  body: string;
}

/**
 * Plugin sections are level-3 headings naming one type in backticks
 * ("### `scorer-pd-bucket`"); a section runs to the next heading of level
 * 1-3. Lines inside code fences are never headings.
 */
function pluginSections(markdown: string): Section[] {
  const sections: Section[] = [];
  let current: { type: string; lines: string[] } | undefined;
  let inFence = false;
  const close = () => {
    if (current) sections.push({ type: current.type, body: current.lines.join('\n') });
    current = undefined;
  };
  for (const line of markdown.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) inFence = !inFence;
    const heading = inFence ? null : /^(#{1,6})\s+(.*?)\s*$/.exec(line);
    if (heading && heading[1]!.length <= 3) {
      close();
      const named = heading[1]!.length === 3 ? /^`([^`]+)`$/.exec(heading[2]!) : null;
      if (named) current = { type: named[1]!, lines: [] };
      continue;
    }
    current?.lines.push(line);
  }
  close();
  return sections;
}

/** The parameter keys of a factory's schema (a zod strictObject). */
function schemaShape(type: string): Record<string, z.ZodType> {
  const schema = builtinRegistry().get(type)!.parameters;
  if (!(schema instanceof z.ZodObject)) throw new Error(`${type}: parameters schema is not a zod object`);
  return schema.shape as Record<string, z.ZodType>;
}

/** The row of the section's parameter table for `key`, if any. */
function tableRow(body: string, key: string): string | undefined {
  return body.split('\n').find((l) => l.trimStart().startsWith(`| \`${key}\``));
}

/** Whether any backticked token of `row` states `value`. */
function statesDefault(row: string, value: unknown): boolean {
  const tokens = [...row.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);
  return tokens.some((t) => {
    if (typeof value === 'number') return t.trim() !== '' && Number(t) === value;
    return t === String(value);
  });
}

const markdown = readFileSync(DOC_URL, 'utf8');
const sections = pluginSections(markdown);
const registered = builtinRegistry().types();

describe('docs/plugins.md', () => {
  it('finds plugin sections at all (the heading convention still holds)', () => {
    expect(sections.length).toBeGreaterThanOrEqual(registered.length);
  });

  it('has exactly one section per registered plugin type', () => {
    for (const type of registered) {
      expect(sections.filter((s) => s.type === type).length, `sections titled ### \`${type}\``).toBe(1);
    }
  });

  it('has no section for a type that is not registered', () => {
    const unknown = sections.map((s) => s.type).filter((t) => !registered.includes(t));
    expect(unknown).toEqual([]);
  });

  describe.each(registered)('%s', (type) => {
    const section = sections.find((s) => s.type === type);
    const shape = schemaShape(type);
    const keys = Object.keys(shape);
    // Parsing no parameters yields exactly the defaults the EPP applies.
    const defaults = builtinRegistry().get(type)!.parameters.parse({}) as Record<string, unknown>;

    it('mentions every parameter key of its schema', () => {
      expect(section, `section for ${type}`).toBeDefined();
      for (const key of keys) expect(section!.body, `parameter ${key}`).toContain(`\`${key}\``);
    });

    it('lists every parameter in its table with the schema default', () => {
      for (const key of keys) {
        const row = tableRow(section!.body, key);
        expect(row, `table row for ${key}`).toBeDefined();
        const def = defaults[key];
        if (def !== undefined)
          expect(statesDefault(row!, def), `default ${String(def)} in: ${row}`).toBe(true);
      }
    });

    it('says so when it takes no parameters', () => {
      if (keys.length === 0) expect(section!.body).toMatch(/Parameters: none/);
      else expect(section!.body).not.toMatch(/Parameters: none/);
    });
  });
});

describe('pluginSections', () => {
  it('ignores headings inside code fences and ends a section at the next heading', () => {
    const md = [
      '## Group',
      '### `a`',
      'text a',
      '```',
      '### `fenced`',
      '```',
      '#### sub of a',
      'more a',
      '### `b`',
      'text b',
      '## Next group',
      'not b',
    ].join('\n');
    const s = pluginSections(md);
    expect(s.map((x) => x.type)).toEqual(['a', 'b']);
    expect(s[0]!.body).toContain('more a');
    expect(s[0]!.body).toContain('### `fenced`');
    expect(s[1]!.body).not.toContain('not b');
  });
});
