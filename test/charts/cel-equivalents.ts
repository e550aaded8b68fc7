// JavaScript readings of the CEL rules (x-kubernetes-validations) that the
// upstream CRDs apply to the objects our charts render. Keyed by the rule
// text with whitespace collapsed, so a rule upstream rewrites is reported as
// "not evaluated" rather than checked against an outdated reading.
// `self` is the value at the rule's node after defaulting, as in the API server.

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export function normalizeRule(rule: string): string {
  return rule.replace(/\s+/g, ' ').trim();
}

const unsetOrEmpty = (o: Json, k: string): boolean => o[k] === undefined || o[k] === '';
/** CEL's "both unset/empty, or both set and equal" for optional strings. */
const sameOptional = (a: Json, b: Json, k: string): boolean =>
  (unsetOrEmpty(a, k) && unsetOrEmpty(b, k)) || (a[k] !== undefined && b[k] !== undefined && a[k] === b[k]);
const sameParent = (a: Json, b: Json): boolean =>
  a.group === b.group && a.kind === b.kind && a.name === b.name && sameOptional(a, b, 'namespace');
const exactlyOne = <T>(xs: T[], pred: (x: T) => boolean): boolean => xs.filter(pred).length === 1;

/** Gateway API Duration ("1h", "300s", "1m30s", "500ms") in milliseconds. */
function durationMs(d: string): number {
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };
  let total = 0;
  for (const m of d.matchAll(/(\d+)(ms|h|m|s)/g)) total += Number(m[1]) * units[m[2]!]!;
  return total;
}

const exactOrPrefix = (p: Json): boolean => p.type === 'Exact' || p.type === 'PathPrefix';
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;

// Each reading takes the shape its rule's node has (object or list).
type Check = (self: never) => boolean;

const RULES: [string, Check][] = [
  // InferencePool v1
  ["self.kind != 'Service' || has(self.port)", (s: Json) => s.kind !== 'Service' || s.port !== undefined],
  [
    'self.all(p1, self.exists_one(p2, p1.number==p2.number))',
    (s: Json[]) => s.every((p1) => exactlyOne(s, (p2) => p1.number === p2.number)),
  ],
  // HTTPRoute parentRefs: no duplicates, and sectionName set on all or none of one parent's refs
  [
    "self.all(p1, self.all(p2, p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name && (((!has(p1.__namespace__) || p1.__namespace__ == '') && (!has(p2.__namespace__) || p2.__namespace__ == '')) || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__ )) ? ((!has(p1.sectionName) || p1.sectionName == '') == (!has(p2.sectionName) || p2.sectionName == '')) : true))",
    (s: Json[]) =>
      s.every((p1) =>
        s.every(
          (p2) => !sameParent(p1, p2) || unsetOrEmpty(p1, 'sectionName') === unsetOrEmpty(p2, 'sectionName'),
        ),
      ),
  ],
  [
    "self.all(p1, self.exists_one(p2, p1.group == p2.group && p1.kind == p2.kind && p1.name == p2.name && (((!has(p1.__namespace__) || p1.__namespace__ == '') && (!has(p2.__namespace__) || p2.__namespace__ == '')) || (has(p1.__namespace__) && has(p2.__namespace__) && p1.__namespace__ == p2.__namespace__ )) && (((!has(p1.sectionName) || p1.sectionName == '') && (!has(p2.sectionName) || p2.sectionName == '')) || (has(p1.sectionName) && has(p2.sectionName) && p1.sectionName == p2.sectionName))))",
    (s: Json[]) =>
      s.every((p1) => exactlyOne(s, (p2) => sameParent(p1, p2) && sameOptional(p1, p2, 'sectionName'))),
  ],
  // HTTPRoute rules: at most 128 matches over the first 16 rules
  [
    Array.from({ length: 16 }, (_, i) => `(self.size() > ${i} ? self[${i}].matches.size() : 0)`).join(' + ') +
      ' <= 128',
    (s: Json[]) => s.slice(0, 16).reduce((n, r) => n + (r.matches?.length ?? 0), 0) <= 128,
  ],
  // HTTPRoute rule: redirects and backends exclusive; ReplacePrefixMatch needs one PathPrefix match
  [
    '(has(self.backendRefs) && size(self.backendRefs) > 0) ? (!has(self.filters) || self.filters.all(f, !has(f.requestRedirect))): true',
    (s: Json) =>
      !(s.backendRefs?.length > 0) || !s.filters || s.filters.every((f: Json) => !f.requestRedirect),
  ],
  ...(['requestRedirect', 'urlRewrite'] as const).flatMap((filter): [string, (s: Json) => boolean][] => {
    const replacesPrefix = (f: Json) =>
      f[filter]?.path?.type === 'ReplacePrefixMatch' && f[filter].path.replacePrefixMatch !== undefined;
    const onePrefixMatch = (s: Json) => s.matches?.length === 1 && s.matches[0].path?.type === 'PathPrefix';
    const tail =
      "((size(self.matches) != 1 || !has(self.matches[0].path) || self.matches[0].path.type != 'PathPrefix') ? false : true) : true";
    const has = `has(f.${filter}) && has(f.${filter}.path) && f.${filter}.path.type == 'ReplacePrefixMatch' && has(f.${filter}.path.replacePrefixMatch)`;
    return [
      [
        `(has(self.filters) && self.filters.exists_one(f, ${has})) ? ${tail}`,
        (s) => !(s.filters && exactlyOne(s.filters, replacesPrefix)) || onePrefixMatch(s),
      ],
      [
        `(has(self.backendRefs) && self.backendRefs.exists_one(b, (has(b.filters) && b.filters.exists_one(f, ${has})) )) ? ${tail}`,
        (s) =>
          !(
            s.backendRefs &&
            exactlyOne(s.backendRefs, (b: Json) => b.filters && exactlyOne(b.filters, replacesPrefix))
          ) || onePrefixMatch(s),
      ],
    ];
  }),
  // HTTPRoute path match values
  [
    "(self.type in ['Exact','PathPrefix']) ? self.value.startsWith('/') : true",
    (s: Json) => !exactOrPrefix(s) || s.value.startsWith('/'),
  ],
  ...['//', '/./', '/../', '%2f', '%2F', '#'].map((bad): [string, (s: Json) => boolean] => [
    `(self.type in ['Exact','PathPrefix']) ? !self.value.contains('${bad}') : true`,
    (s) => !exactOrPrefix(s) || !s.value.includes(bad),
  ]),
  ...['/..', '/.'].map((bad): [string, (s: Json) => boolean] => [
    `(self.type in ['Exact','PathPrefix']) ? !self.value.endsWith('${bad}') : true`,
    (s) => !exactOrPrefix(s) || !s.value.endsWith(bad),
  ]),
  [
    "self.type in ['Exact','PathPrefix'] || self.type == 'RegularExpression'",
    (s: Json) => exactOrPrefix(s) || s.type === 'RegularExpression',
  ],
  [
    `(self.type in ['Exact','PathPrefix']) ? self.value.matches(r"""^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$""") : true`,
    (s: Json) => !exactOrPrefix(s) || PATH_CHARS.test(s.value),
  ],
  // HTTPRoute backendRef to a core Service needs a port
  [
    "(size(self.group) == 0 && self.kind == 'Service') ? has(self.port) : true",
    (s: Json) => !(s.group === '' && s.kind === 'Service') || s.port !== undefined,
  ],
  // HTTPRoute timeouts: backendRequest not longer than a non-zero request timeout
  [
    "!(has(self.request) && has(self.backendRequest) && duration(self.request) != duration('0s') && duration(self.backendRequest) > duration(self.request))",
    (s: Json) =>
      !(
        s.request !== undefined &&
        s.backendRequest !== undefined &&
        durationMs(s.request) !== 0 &&
        durationMs(s.backendRequest) > durationMs(s.request)
      ),
  ],
  // Gateway listeners
  [
    "self.all(l, l.protocol in ['HTTP', 'TCP', 'UDP'] ? !has(l.tls) : true)",
    (s: Json[]) => s.every((l) => !['HTTP', 'TCP', 'UDP'].includes(l.protocol) || l.tls === undefined),
  ],
  [
    "self.all(l, (l.protocol == 'HTTPS' && has(l.tls)) ? (l.tls.mode == '' || l.tls.mode == 'Terminate') : true)",
    (s: Json[]) =>
      s.every((l) => !(l.protocol === 'HTTPS' && l.tls) || l.tls.mode === '' || l.tls.mode === 'Terminate'),
  ],
  [
    "self.all(l, l.protocol in ['TCP', 'UDP'] ? (!has(l.hostname) || l.hostname == '') : true)",
    (s: Json[]) => s.every((l) => !['TCP', 'UDP'].includes(l.protocol) || unsetOrEmpty(l, 'hostname')),
  ],
  [
    'self.all(l1, self.exists_one(l2, l1.name == l2.name))',
    (s: Json[]) => s.every((l1) => exactlyOne(s, (l2) => l1.name === l2.name)),
  ],
  [
    'self.all(l1, self.exists_one(l2, l1.port == l2.port && l1.protocol == l2.protocol && (has(l1.hostname) && has(l2.hostname) ? l1.hostname == l2.hostname : !has(l1.hostname) && !has(l2.hostname))))',
    (s: Json[]) =>
      s.every((l1) =>
        exactlyOne(
          s,
          (l2) =>
            l1.port === l2.port &&
            l1.protocol === l2.protocol &&
            (l1.hostname !== undefined && l2.hostname !== undefined
              ? l1.hostname === l2.hostname
              : l1.hostname === undefined && l2.hostname === undefined),
        ),
      ),
  ],
];

export const CEL_EQUIVALENTS: ReadonlyMap<string, (self: unknown) => boolean> = new Map(
  RULES.map(([rule, fn]) => [normalizeRule(rule), fn as (self: unknown) => boolean]),
);
