// Property: whatever text an operator (or a broken template) hands the
// config loader, loadConfigText either returns a compiled profile or throws
// a ConfigError naming the file (and the YAML path when there is one):
// never a TypeError, RangeError, stack overflow or a hang. Same for the
// endpoints file.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import yaml from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { loadConfigText } from '../../src/config/endpoint-picker-config.js';
import { ConfigError } from '../../src/config/errors.js';
import { parseEndpointsFile } from '../../src/discovery/endpoints-file.js';
import { builtinRegistry } from '../../src/plugins/index.js';
import { adversarialYaml, choices, mutateText, mutateValue, yamlDoc } from './arbitraries.js';

const registry = builtinRegistry();
const PROFILES = join(import.meta.dirname, '../../examples/profiles');
const profileTexts = readdirSync(PROFILES)
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => [f, readFileSync(join(PROFILES, f), 'utf8')] as const);

// Every example profile embeds its EndpointPickerConfig as a YAML string;
// mutate those too, not only the values-file wrapper.
const embeddedTexts = profileTexts.flatMap(([f, text]) => {
  const doc = yaml.load(text) as {
    inferencepool?: { inferenceExtension?: { pluginsCustomConfig?: Record<string, string> } };
  };
  return Object.entries(doc.inferencepool?.inferenceExtension?.pluginsCustomConfig ?? {}).map(
    ([n, t]) => [`${f}#${n}`, t] as const,
  );
});

const RUN = { numRuns: 400, interruptAfterTimeLimit: 6_000, markInterruptAsFailure: false } as const;
// How long one load takes is a figure of `npm run bench -- hostile` (parse
// section), not an assertion here: a real hang still fails on the test timeout.

type Outcome = 'ok' | 'config-error';

function loadOutcome(text: string, file: string): Outcome {
  try {
    loadConfigText(text, file, registry);
    return 'ok';
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      throw new Error(
        `loadConfigText threw ${(e as Error)?.name}: ${(e as Error)?.message}\n--- input ---\n${text.slice(0, 2000)}`,
      );
    }
    expect(e.file).toBe(file);
    expect(e.message.startsWith(`${file}: `)).toBe(true);
    expect(e.expected.length).toBeGreaterThan(0);
    return 'config-error';
  }
}

function endpointsOutcome(text: string, file: string): Outcome {
  try {
    const eps = parseEndpointsFile(text, file);
    for (const e of eps) {
      expect(typeof e.id).toBe('string');
      expect(Number.isInteger(e.port) && e.port >= 1 && e.port <= 65535).toBe(true);
    }
    expect(new Set(eps.map((e) => e.id)).size).toBe(eps.length);
    return 'ok';
  } catch (e) {
    if (!(e instanceof ConfigError)) {
      throw new Error(
        `parseEndpointsFile threw ${(e as Error)?.name}: ${(e as Error)?.message}\n--- input ---\n${text.slice(0, 2000)}`,
      );
    }
    expect(e.file).toBe(file);
    return 'config-error';
  }
}

describe('EndpointPickerConfig loader under fuzzing', () => {
  it('the example profiles load unchanged (the baseline the mutations start from)', () => {
    for (const [f, text] of profileTexts) expect(loadOutcome(text, f)).toBe('ok');
    for (const [f, text] of embeddedTexts) expect(loadOutcome(text, f)).toBe('ok');
  });

  it('arbitrary text: ok or ConfigError', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ maxLength: 400 }), fc.string({ unit: 'binary', maxLength: 400 })),
        (text) => {
          loadOutcome(text, 'fuzz.yaml');
        },
      ),
      RUN,
    );
  });

  it('arbitrary YAML documents: ok or ConfigError', () => {
    fc.assert(
      fc.property(yamlDoc(), (doc) => {
        loadOutcome(yaml.dump(doc, { skipInvalid: true }), 'doc.yaml');
      }),
      RUN,
    );
  });

  it('structural mutations of the example profiles (wrapper and embedded config): ok or ConfigError naming a path', () => {
    const sources = [...profileTexts, ...embeddedTexts];
    let errorsWithPath = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...sources),
        fc.integer({ min: 1, max: 4 }),
        choices(),
        ([f, text], n, rnd) => {
          let doc: unknown = yaml.load(text);
          for (let i = 0; i < n; i++) doc = mutateValue(doc, rnd);
          try {
            loadConfigText(yaml.dump(doc, { skipInvalid: true }), f, registry);
          } catch (e) {
            if (!(e instanceof ConfigError)) throw e;
            if (e.yamlPath) errorsWithPath++;
          }
          loadOutcome(yaml.dump(doc, { skipInvalid: true }), f);
        },
      ),
      RUN,
    );
    // A structurally broken document is rejected at a specific place, not at <root>.
    expect(errorsWithPath).toBeGreaterThan(0);
  });

  it('byte-level mutations of the example profiles: ok or ConfigError', () => {
    const sources = [...profileTexts, ...embeddedTexts];
    fc.assert(
      fc.property(
        fc.constantFrom(...sources),
        choices(),
        fc.integer({ min: 1, max: 8 }),
        ([f, text], rnd, n) => {
          loadOutcome(mutateText(text, rnd, n), f);
        },
      ),
      RUN,
    );
  });

  it('adversarial YAML (alias bombs, deep nesting, custom tags, huge scalars, merge keys): ok or ConfigError', () => {
    for (const [name, text] of adversarialYaml()) loadOutcome(text, `${name}.yaml`);
    // Adversarial bodies embedded in a values file exercise the second parse.
    for (const [name, text] of adversarialYaml()) {
      const values = yaml.dump({
        inferencepool: {
          inferenceExtension: { pluginsConfigFile: 'x.yaml', pluginsCustomConfig: { 'x.yaml': text } },
        },
      });
      loadOutcome(values, `values-${name}.yaml`);
    }
    // `__proto__` keys in YAML must not reach Object.prototype.
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('endpoints file parser under fuzzing', () => {
  const good =
    'endpoints:\n- name: vllm-0\n  address: 127.0.0.1\n  port: 8000\n  labels: {openfuyao.com/pdRole: prefill, openfuyao.com/pdGroupID: g1}\n  metricsPort: 8001\n  metricsPath: /metrics\n  kvEventsPort: 5557\n- address: "::1"\n  port: 8002\n';

  it('the baseline parses', () => {
    expect(parseEndpointsFile(good, 'eps.yaml').map((e) => e.id)).toEqual(['127.0.0.1:8000', '[::1]:8002']);
  });

  it('arbitrary text and YAML documents: endpoints or ConfigError', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 300 }),
          yamlDoc().map((d) => yaml.dump(d, { skipInvalid: true })),
        ),
        (text) => {
          endpointsOutcome(text, 'eps.yaml');
        },
      ),
      RUN,
    );
  });

  it('mutations of a valid file: endpoints or ConfigError', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), choices(), fc.boolean(), (n, rnd, textLevel) => {
        if (textLevel) return void endpointsOutcome(mutateText(good, rnd, n), 'eps.yaml');
        let doc: unknown = yaml.load(good);
        for (let i = 0; i < n; i++) doc = mutateValue(doc, rnd);
        endpointsOutcome(yaml.dump(doc, { skipInvalid: true }), 'eps.yaml');
      }),
      RUN,
    );
  });

  it('endpoint fields of every wrong type are rejected with a ConfigError', () => {
    const fields = ['name', 'address', 'port', 'labels', 'metricsPort', 'metricsPath', 'kvEventsPort'];
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.jsonValue(), (field, value) => {
        const ep: Record<string, unknown> = { address: '10.0.0.1', port: 8000, [field]: value };
        endpointsOutcome(yaml.dump({ endpoints: [ep] }, { skipInvalid: true }), 'eps.yaml');
      }),
      RUN,
    );
  });

  it('adversarial YAML: ConfigError', () => {
    for (const [name, text] of adversarialYaml('endpoints')) endpointsOutcome(text, `${name}.yaml`);
  });
});
