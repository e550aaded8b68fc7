// Every Envoy bootstrap in the repo (deploy/, docs/: files, and YAML blocks
// in Markdown) parsed with Envoy's own Go types and validated with their
// rules, typed_config Anys included (test/envoy-validate, built by
// .ci/tools.sh as ENVOY_VALIDATE_BIN from go-control-plane). Broken copies
// must fail, so a pass means something.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../../..');

function bin(): string {
  const b = process.env.ENVOY_VALIDATE_BIN;
  if (!b || !existsSync(b))
    throw new Error(
      `ENVOY_VALIDATE_BIN (${b ?? 'unset'}) must name the built test/envoy-validate: run \`source .ci/tools.sh\` or \`npm test\``,
    );
  return b;
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const isBootstrap = (text: string) => /^\s*"?static_resources"?\s*:/m.test(text);

/** [label, file to validate]: bootstrap files, and fenced yaml/json blocks of Markdown files written out. */
function bootstraps(): Array<[string, string]> {
  const tmp = mkdtempSync(join(tmpdir(), 'hermes-envoy-'));
  const out: Array<[string, string]> = [];
  for (const file of ['deploy', 'docs'].flatMap((d) => walk(join(ROOT, d)))) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(ROOT, file);
    if (/\.(ya?ml|json)$/.test(file) && isBootstrap(text)) out.push([rel, file]);
    if (file.endsWith('.md')) {
      const blocks = [...text.matchAll(/```(?:yaml|yml|json)\n([\s\S]*?)```/g)].map((m) => m[1]!);
      blocks.forEach((b, i) => {
        if (!isBootstrap(b)) return;
        const f = join(tmp, `${rel.replace(/\W/g, '_')}-${i}.yaml`);
        writeFileSync(f, b);
        out.push([`${rel} (block ${i + 1})`, f]);
      });
    }
  }
  return out;
}

function validate(...files: string[]) {
  const r = spawnSync(bin(), files, { encoding: 'utf8', timeout: 30_000 });
  return { code: r.status, out: (r.stdout ?? '') + (r.stderr ?? '') };
}

describe("Envoy bootstraps against Envoy's API (go-control-plane types + validation rules)", () => {
  const found = bootstraps();

  it('finds the bootstraps (deploy/envoy/envoy.yaml at least)', () => {
    expect(found.map(([l]) => l)).toContain('deploy/envoy/envoy.yaml');
  });

  it.each(found)('%s parses and validates', (_label, file) => {
    const r = validate(file);
    expect(r.out).toMatch(/^ok .*: \d+ typed configs validated$/m);
    expect(r.code, r.out).toBe(0);
    // Every typed_config was unpacked and validated.
    const typed = (readFileSync(file, 'utf8').match(/'?"?@type"?'?\s*:/g) ?? []).length;
    expect(Number(/: (\d+) typed configs/.exec(r.out)![1])).toBe(typed);
  });

  it('refuses broken copies: bad port, unknown field, an empty cluster name inside a typed_config', () => {
    const base = readFileSync(join(ROOT, 'deploy/envoy/envoy.yaml'), 'utf8');
    const dir = mkdtempSync(join(tmpdir(), 'hermes-envoy-bad-'));
    const cases: Array<[string, string, RegExp]> = [
      [
        'port',
        base.replace('port_value: 8081', 'port_value: 70000'),
        /PortValue: value must be less than or equal to 65535/,
      ],
      [
        'field',
        base.replace(
          'request_body_mode: FULL_DUPLEX_STREAMED',
          'request_body_mode: FULL_DUPLEX_STREAMED\n                        not_a_field: 1',
        ),
        /unknown field "not_a_field"/,
      ],
      [
        'ext_proc cluster',
        base.replace(/cluster_name: epp\n/, 'cluster_name: ""\n'),
        /ExternalProcessor>.*ClusterName: value length must be at least 1/,
      ],
    ];
    for (const [name, text, msg] of cases) {
      expect(text, name).not.toBe(base);
      const f = join(dir, `${name.replace(/\W/g, '_')}.yaml`);
      writeFileSync(f, text);
      const r = validate(f);
      expect(r.code, name).toBe(1);
      expect(r.out, name).toMatch(msg);
    }
  });
});
