// Generators and mutators shared by the fuzz suites: JSON/YAML-shaped
// documents biased towards the keys our parsers look at, structural and
// byte-level mutations driven by a fast-check supplied list of numbers (so
// failures shrink and replay), and hand-written adversarial inputs.
import fc from 'fast-check';

/** Keys the config, endpoints-file and OpenAI parsers look for. */
export const INTERESTING_KEYS = [
  'apiVersion',
  'kind',
  'plugins',
  'type',
  'name',
  'parameters',
  'schedulingProfiles',
  'pluginRef',
  'weight',
  'featureGates',
  'inferencepool',
  'inferenceExtension',
  'pluginsConfigFile',
  'pluginsCustomConfig',
  'endpoints',
  'address',
  'port',
  'labels',
  'metricsPort',
  'metricsPath',
  'kvEventsPort',
  'model',
  'messages',
  'role',
  'content',
  'text',
  'prompt',
  'stream',
  'max_tokens',
  'stream_options',
  'candidates',
  'token_ids',
  '__proto__',
  'constructor',
  'toString',
  '',
] as const;

export const weirdScalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1,
    1.5,
    -0,
    2 ** 53 + 1,
    1e308,
    -1e308,
    '',
    ' ',
    '0',
    'true',
    'null',
    '\u0000',
    '\uffff',
    '\ud800',
    'inference.networking.x-k8s.io/v1alpha1',
    'EndpointPickerConfig',
    'queue-scorer',
    'max-score-picker',
    'picker-min-random',
    '127.0.0.1',
    '::1',
    '/v1/chat/completions',
  ),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
);

const key = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...INTERESTING_KEYS) },
  { weight: 1, arbitrary: fc.string({ maxLength: 12 }) },
);

/** A JSON-like document, depth-bounded, with keys our parsers care about. */
export function yamlDoc(maxDepth = 4): fc.Arbitrary<unknown> {
  const { node } = fc.letrec<{ node: unknown }>((tie) => ({
    node: fc.oneof(
      { depthSize: 'small', maxDepth, withCrossShrink: true },
      weirdScalar,
      fc.array(tie('node'), { maxLength: 5 }),
      fc.dictionary(key, tie('node'), { maxKeys: 6 }),
    ),
  }));
  return node;
}

/** Deterministic choices from a fast-check generated list of numbers. */
export class Choices {
  private i = 0;
  constructor(private readonly xs: readonly number[]) {}
  next(n: number): number {
    if (n <= 0) return 0;
    const x = this.xs.length ? this.xs[this.i++ % this.xs.length]! : 0;
    return x % n;
  }
  pick<T>(arr: readonly T[]): T {
    return arr[this.next(arr.length)]!;
  }
}

export const choices = (len = 48) =>
  fc.array(fc.nat({ max: 1_000_000 }), { minLength: len, maxLength: len }).map((xs) => new Choices(xs));

const REPLACEMENTS: unknown[] = [
  null,
  true,
  0,
  -1,
  1e308,
  3.5,
  '',
  'x',
  '\ud800',
  [],
  {},
  [null],
  [[]],
  { type: 1 },
  { '': '' },
  'a'.repeat(10_000),
  Array.from({ length: 50 }, (_, i) => i),
  { pluginRef: 'nope' },
];

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Returns a copy of `doc` with one random node changed (deleted, retyped, duplicated, renamed, wrapped). */
export function mutateValue(doc: unknown, c: Choices, depth = 0): unknown {
  const descend = c.next(3) !== 0 && depth < 8;
  if (Array.isArray(doc) && doc.length > 0 && descend) {
    const copy = [...doc];
    const i = c.next(copy.length);
    copy[i] = mutateValue(copy[i], c, depth + 1);
    return copy;
  }
  if (isObj(doc) && Object.keys(doc).length > 0 && descend) {
    const copy: Record<string, unknown> = { ...doc };
    const k = c.pick(Object.keys(copy));
    copy[k] = mutateValue(copy[k], c, depth + 1);
    return copy;
  }
  switch (c.next(7)) {
    case 0:
      return undefined; // deleted (yaml.dump with skipInvalid drops it)
    case 1:
      return c.pick(REPLACEMENTS);
    case 2:
      return [doc, doc]; // wrapped and duplicated
    case 3:
      if (isObj(doc)) {
        const ks = Object.keys(doc);
        if (ks.length === 0) return { [c.pick(INTERESTING_KEYS)]: c.pick(REPLACEMENTS) };
        const k = c.pick(ks);
        const { [k]: v, ...rest } = doc;
        return { ...rest, [c.pick(INTERESTING_KEYS)]: v }; // renamed key
      }
      return { [c.pick(INTERESTING_KEYS)]: doc };
    case 4:
      if (Array.isArray(doc)) return [...doc, ...doc]; // duplicated entries (names, endpoints)
      // (JSON for objects: a mutated object may carry a non-function `toString` key.)
      return typeof doc === 'string'
        ? doc + doc
        : typeof doc === 'object' && doc !== null
          ? JSON.stringify(doc)
          : String(doc);
    case 5:
      if (typeof doc === 'number')
        return c.pick([-doc, doc * 1e300, doc + 0.5, Number.MAX_SAFE_INTEGER + 2, 65536, 0]);
      if (typeof doc === 'string')
        return c.pick([doc.toUpperCase(), doc.slice(1), ` ${doc}`, `${doc}\u0000`, Number(doc.length)]);
      return c.pick(REPLACEMENTS);
    default:
      return Array.isArray(doc) ? [] : isObj(doc) ? {} : null; // emptied
  }
}

const TEXT_NOISE = [
  ':',
  ': ',
  '-',
  '- ',
  '\n',
  '\t',
  '  ',
  '{',
  '}',
  '[',
  ']',
  '&a ',
  '*a',
  '!!str ',
  '!!binary ',
  '<<: ',
  '#',
  '"',
  "'",
  '|',
  '>',
  '\u0000',
  '\ufeff',
  '\ud800',
  '\r\n',
  '---\n',
  '...\n',
  '%YAML 1.2\n',
  '? ',
  ',',
  '@',
  '`',
  '!foo ',
  '&x [*x]',
];

/** Returns `text` with `n` random byte-level edits (delete, insert noise, duplicate or swap lines, re-indent). */
export function mutateText(text: string, c: Choices, n: number): string {
  let s = text;
  for (let k = 0; k < n; k++) {
    const at = c.next(s.length + 1);
    switch (c.next(5)) {
      case 0:
        s = s.slice(0, at) + s.slice(at + 1 + c.next(20));
        break;
      case 1:
        s = s.slice(0, at) + c.pick(TEXT_NOISE) + s.slice(at);
        break;
      case 2: {
        const lines = s.split('\n');
        const i = c.next(lines.length);
        lines.splice(i, 0, lines[i]!);
        s = lines.join('\n');
        break;
      }
      case 3: {
        const lines = s.split('\n');
        const i = c.next(lines.length);
        const j = c.next(lines.length);
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
        s = lines.join('\n');
        break;
      }
      default: {
        const lines = s.split('\n');
        const i = c.next(lines.length);
        lines[i] = c.next(2) ? ' ' + lines[i] : lines[i]!.replace(/^ /, '');
        s = lines.join('\n');
      }
    }
  }
  return s;
}

/** Hand-written hostile YAML documents, as [name, text]. */
export function adversarialYaml(kind: 'config' | 'endpoints' = 'config'): Array<[string, string]> {
  const head = 'apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n';
  const field = kind === 'config' ? 'plugins' : 'endpoints';
  const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x"]'];
  for (let i = 1; i < 10; i++) {
    const prev = String.fromCharCode(96 + i);
    const cur = String.fromCharCode(97 + i);
    bomb.push(
      `${cur}: &${cur} [*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev},*${prev}]`,
    );
  }
  const bombText = bomb.join('\n');
  return [
    ['alias-bomb-root', `${bombText}\n`],
    ['alias-bomb-in-field', `${head}${bombText}\n${field}: *j\n`],
    [
      'alias-bomb-parameters',
      `${head}${bombText.replace(/^/gm, '# ')}\nplugins:\n- type: queue-scorer\n  parameters: &p {x: &q [1,2,3]}\n- type: max-score-picker\n  parameters: *p\n`,
    ],
    ['deep-flow-nesting', `${field}: ${'['.repeat(20_000)}${']'.repeat(20_000)}\n`],
    [
      'deep-map-nesting',
      `${field}:\n${Array.from({ length: 2_000 }, (_, i) => `${'  '.repeat(i + 1)}k${i}:`).join('\n')} 1\n`,
    ],
    [
      'deep-block-seq',
      `${head}plugins:\n${Array.from({ length: 3_000 }, (_, i) => `${'  '.repeat(i)}- `).join('\n')}x\n`,
    ],
    ['huge-scalar', `${head}plugins:\n- type: ${'q'.repeat(5_000_000)}\n`],
    ['huge-key', `${head}${'k'.repeat(1_000_000)}: 1\n`],
    [
      'many-plugins',
      `${head}plugins:\n${Array.from({ length: 10_000 }, (_, i) => `- type: queue-scorer\n  name: q${i}`).join('\n')}\nschedulingProfiles:\n- name: d\n  plugins:\n${Array.from({ length: 10_000 }, (_, i) => `  - pluginRef: q${i}\n    weight: 1`).join('\n')}\n`,
    ],
    [
      'many-parameters',
      `${head}plugins:\n- type: queue-scorer\n  parameters:\n${Array.from({ length: 20_000 }, (_, i) => `    p${i}: ${i}`).join('\n')}\n`,
    ],
    ['js-function-tag', `${head}plugins:\n- type: !!js/function 'function () { process.exit(9) }'\n`],
    ['js-regexp-tag', `${head}plugins:\n- type: !!js/regexp /x/\n`],
    ['python-tag', `${head}plugins: !!python/object/apply:os.system ["true"]\n`],
    ['unknown-tag', `${head}plugins: !hermes {a: 1}\n`],
    [
      'binary-set-timestamp',
      `${head}plugins:\n- type: !!binary aGVsbG8=\n  name: !!timestamp 2001-12-14\n  parameters: !!set {a, b}\n`,
    ],
    [
      'merge-keys',
      `base: &b {type: queue-scorer}\n${head}plugins:\n- <<: *b\n  name: q\n- <<: [*b, *b]\n  type: max-score-picker\n`,
    ],
    ['duplicate-keys', `${head}plugins: []\nplugins: [{type: queue-scorer}]\n`],
    ['multi-document', `${head}plugins: [{type: queue-scorer}]\n---\n${head}\n`],
    [
      'proto-pollution',
      `${head}__proto__: {polluted: true}\nplugins:\n- type: queue-scorer\n  parameters: {__proto__: {polluted: true}, constructor: {prototype: {polluted: true}}}\n`,
    ],
    ...['constructor', 'toString', '__proto__', 'hasOwnProperty'].map((t): [string, string] => [
      `prototype-name-${t}`,
      `${head}plugins:\n- type: ${t}\n- type: queue-scorer\n  name: ${t}\nschedulingProfiles:\n- name: d\n  plugins:\n  - pluginRef: ${t}\n`,
    ]),
    [
      'nan-inf-weights',
      `${head}plugins: [{type: queue-scorer}, {type: max-score-picker}]\nschedulingProfiles:\n- name: d\n  plugins: [{pluginRef: queue-scorer, weight: .nan}, {pluginRef: max-score-picker, weight: .inf}]\n`,
    ],
    [
      'huge-numbers',
      `${field}:\n- {address: 1.2.3.4, port: 1e400, type: queue-scorer, weight: 1e400, metricsPort: -0}\n`,
    ],
    ['bom-nul-crlf', `\ufeff${head.replace(/\n/g, '\r\n')}plugins:\r\n- type: queue\u0000-scorer\r\n`],
    ['lone-surrogates', `${head}plugins:\n- type: "\\ud800\\udfff\\ud800"\n  name: "\udc00"\n`],
    ['tabs-indentation', `${head}plugins:\n\t- type: queue-scorer\n`],
    ['only-comments', '# nothing here\n# at all\n'],
    ['empty', ''],
    ['scalar-root', '42\n'],
    ['sequence-root', '- a\n- b\n'],
    ['null-root', '~\n'],
    [
      'values-file-non-string-config',
      'inferencepool:\n  inferenceExtension:\n    pluginsConfigFile: a.yaml\n    pluginsCustomConfig:\n      a.yaml: {apiVersion: x}\n',
    ],
    [
      'values-file-missing-active',
      'inferencepool:\n  inferenceExtension:\n    pluginsConfigFile: nope.yaml\n    pluginsCustomConfig: {}\n',
    ],
    ['values-file-alias-bomb', `${bombText}\ninferencepool: {inferenceExtension: {pluginsConfigFile: *j}}\n`],
    ['values-file-inferencepool-null', 'inferencepool: null\n'],
    ['values-file-inferencepool-array', 'inferencepool: [1, 2]\n'],
  ];
}

/** msgpack headers that declare far more than they carry, nest deeply or use odd types (named). */
export function hostileMsgpack(): Array<[string, Buffer]> {
  return [
    ['array32 of 2^31-1 elements, no data', Buffer.from([0xdd, 0x7f, 0xff, 0xff, 0xff])],
    ['map32 of 2^32-1 entries', Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff])],
    ['str32 of 4 GiB', Buffer.from([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61])],
    ['bin32 of 4 GiB', Buffer.from([0xc6, 0xff, 0xff, 0xff, 0xff])],
    ['ext32, unknown type', Buffer.from([0xc9, 0x00, 0x00, 0x00, 0x01, 0x05, 0x00])],
    ['timestamp ext', Buffer.from([0xd6, 0xff, 0x00, 0x00, 0x00, 0x00])],
    ['100k nested fixarrays', Buffer.alloc(100_000, 0x91)],
    [
      'events: array of 1e6, truncated',
      Buffer.concat([
        Buffer.from([0x82, 0xa2, 0x74, 0x73, 0x01, 0xa6]),
        Buffer.from('events'),
        Buffer.from([0xdd, 0x00, 0x0f, 0x42, 0x40]),
      ]),
    ],
    ['map with a map key', Buffer.from([0x81, 0x80, 0x01])],
    ['never-used byte', Buffer.from([0xc1])],
  ];
}

/** Request bodies built to be slow or large to parse: [name, path, body]. */
export function hostileOpenAIBodies(): Array<[string, string, string]> {
  const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const cases: Array<[string, string, string]> = [
    ['200k-deep array', '/v1/chat/completions', deep(200_000)],
    ['messages 200k deep', '/v1/chat/completions', `{"model":"m","messages":${deep(200_000)}}`],
    [
      'content 100k deep',
      '/v1/chat/completions',
      `{"model":"m","messages":[{"role":"user","content":${deep(100_000)}}]}`,
    ],
    [
      'prompt of 100k nested objects',
      '/v1/completions',
      `{"model":"m","prompt":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`,
    ],
    [
      '16 MiB content',
      '/v1/chat/completions',
      JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(16 * 1024 * 1024) }] }),
    ],
    [
      '1 MB model and role, lone surrogates',
      '/v1/chat/completions',
      JSON.stringify({
        model: 'm'.repeat(1_000_000),
        messages: [{ role: 'r'.repeat(1_000_000), content: '\ud800'.repeat(100_000) }],
      }),
    ],
    [
      'prompt of 1M token ids',
      '/v1/completions',
      JSON.stringify({ model: 'm', prompt: Array.from({ length: 1_000_000 }, (_, i) => i) }),
    ],
    [
      'prompt of 200k strings',
      '/v1/completions',
      JSON.stringify({ model: 'm', prompt: Array.from({ length: 200_000 }, () => 'ab') }),
    ],
    [
      '100k multimodal messages',
      '/v1/chat/completions',
      JSON.stringify({
        model: 'm',
        messages: Array.from({ length: 100_000 }, () => ({
          role: 'user',
          content: [
            { type: 'text', text: 'x' },
            { type: 'image_url', image_url: { url: 'data:' } },
          ],
        })),
      }),
    ],
    [
      '100k escaped NULs',
      '/v1/chat/completions',
      '{"model":"m","messages":[{"role":"user","content":"' + '\\u0000'.repeat(100_000) + '"}]}',
    ],
    [
      '__proto__ key',
      '/v1/chat/completions',
      '{"__proto__":{"model":"m"},"messages":[{"role":"user","content":"x"}]}',
    ],
    [
      'duplicate model keys',
      '/v1/chat/completions',
      '{"model":"m","model":"","messages":[{"role":"user","content":"x"}]}',
    ],
  ];
  return cases;
}
