// A small parser for the Prometheus text exposition format (what vLLM's
// /metrics serves): `name{label="value",...} value [timestamp]` per line,
// `#` lines are comments (HELP/TYPE). Only the families asked for are kept,
// so a 100 KB page costs little more than a scan for line starts.
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export type Families = Map<string, Sample[]>;

function parseValue(s: string): number {
  switch (s) {
    case '+Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return NaN;
    default:
      return Number(s);
  }
}

/** Parses `{a="b",c="d"}` starting at text[i] === '{'; returns labels and the index after '}'. */
function parseLabels(text: string, i: number, end: number): [Record<string, string>, number] {
  const labels: Record<string, string> = {};
  i++; // '{'
  while (i < end) {
    while (i < end && (text[i] === ' ' || text[i] === ',')) i++;
    if (text[i] === '}') return [labels, i + 1];
    const eq = text.indexOf('=', i);
    if (eq < 0 || eq >= end) throw new Error('label without "="');
    const name = text.slice(i, eq).trim();
    i = eq + 1;
    if (text[i] !== '"') throw new Error(`label ${name}: value must be quoted`);
    i++;
    let value = '';
    while (i < end && text[i] !== '"') {
      const c = text[i]!;
      if (c === '\\' && i + 1 < end) {
        const n = text[i + 1];
        value += n === 'n' ? '\n' : n;
        i += 2;
      } else {
        value += c;
        i++;
      }
    }
    if (i >= end) throw new Error(`label ${name}: unterminated value`);
    labels[name] = value;
    i++; // closing quote
  }
  throw new Error('unterminated label set');
}

/**
 * Samples of the wanted metric names (all names when `wanted` is omitted).
 * Malformed lines are skipped and counted in `errors`.
 */
export function parsePromText(
  text: string,
  wanted?: ReadonlySet<string>,
): { families: Families; errors: number } {
  const families: Families = new Map();
  let errors = 0;
  let pos = 0;
  const n = text.length;
  while (pos < n) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = n;
    const lineStart = pos;
    pos = end + 1;
    let i = lineStart;
    while (i < end && (text[i] === ' ' || text[i] === '\t')) i++;
    if (i >= end || text[i] === '#') continue;
    let j = i;
    while (j < end && text[j] !== '{' && text[j] !== ' ' && text[j] !== '\t') j++;
    const name = text.slice(i, j);
    if (wanted && !wanted.has(name)) continue;
    try {
      let labels: Record<string, string> = {};
      if (text[j] === '{') [labels, j] = parseLabels(text, j, end);
      const rest = text.slice(j, end).trim().split(/\s+/);
      const value = parseValue(rest[0] ?? '');
      if (rest[0] === undefined || rest[0] === '' || (Number.isNaN(value) && rest[0] !== 'NaN')) {
        throw new Error('missing value');
      }
      let list = families.get(name);
      if (!list) families.set(name, (list = []));
      list.push({ labels, value });
    } catch {
      errors++;
    }
  }
  return { families, errors };
}
