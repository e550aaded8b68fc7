// A targeted scanner for the Prometheus text exposition: finds the sample
// lines of one metric family in the raw bytes of a /metrics page and folds
// their values, without decoding the page to a string or looking at the
// other families. vLLM's page is 10-150 KB of histograms of which the
// scraper needs four gauges, so parsing everything (prom-text.ts) costs
// ~20x more than this.
//
// It accepts exactly the sample lines parsePromText accepts for that name:
// the name is the line's first token (leading blanks allowed; HELP/TYPE and
// other comments never match), followed by `{`, a blank or the end of the
// line; labels must be well formed (quoted values, backslash escapes) but
// are not kept; the value is the first whitespace-separated token after
// them (a timestamp may follow), `NaN`, `+Inf`, `-Inf` or anything
// Number() reads. Malformed lines are skipped.

/** What the samples of one family add up to. */
export interface FamilyFold {
  /** Sample lines read (non-finite values included). */
  samples: number;
  /** Sum of the finite values, in page order. */
  sum: number;
  /** Largest finite value (-Infinity when none). */
  max: number;
}

const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const TAB = 0x09;
const VT = 0x0b;
const FF = 0x0c;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const COMMA = 0x2c;
const EQ = 0x3d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Whitespace as String.prototype.trim() sees it, restricted to ASCII (non-ASCII takes the slow path). */
const isBlank = (c: number): boolean => c === SP || c === TAB || c === CR || c === VT || c === FF;

/** True when only blanks stand between the line start (or a UTF-8 BOM at the page start) and `k`. */
function atLineStart(buf: Buffer, k: number): boolean {
  let b = k - 1;
  while (b >= 0 && (buf[b] === SP || buf[b] === TAB)) b--;
  if (b < 0 || buf[b] === LF) return true;
  // A decoder strips a leading BOM, so the first line starts after it.
  return b === 2 && buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf;
}

/**
 * Skips a label set `{a="b",...}` that starts at buf[i] === '{'; returns the
 * index after `}` or -1 when it is malformed before `end` (the line end).
 * Same acceptance as prom-text's parseLabels: pairs separated by commas and
 * blanks, a name up to `=`, a double-quoted value with `\` escaping the next byte.
 */
function skipLabels(buf: Buffer, i: number, end: number): number {
  i++;
  while (i < end) {
    while (i < end && (buf[i] === SP || buf[i] === COMMA)) i++;
    if (i < end && buf[i] === RBRACE) return i + 1;
    while (i < end && buf[i] !== EQ) i++;
    if (i >= end) return -1;
    i++;
    if (i >= end || buf[i] !== QUOTE) return -1;
    i++;
    while (i < end && buf[i] !== QUOTE) i += buf[i] === BACKSLASH && i + 1 < end ? 2 : 1;
    if (i >= end) return -1;
    i++;
  }
  return -1;
}

function parseValue(s: string): number | undefined {
  switch (s) {
    case '':
      return undefined;
    case '+Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return NaN;
    default: {
      const v = Number(s);
      return Number.isNaN(v) ? undefined : v;
    }
  }
}

/** The value of the sample whose labels (if any) ended at `j`; undefined when there is none. */
function sampleValue(buf: Buffer, j: number, end: number): number | undefined {
  let s = j;
  while (s < end && isBlank(buf[s]!)) s++;
  let e = s;
  while (e < end && !isBlank(buf[e]!)) e++;
  for (let k = s; k < end; k++) {
    if (buf[k]! >= 0x80) {
      // Non-ASCII after the labels: let the string functions decide what is
      // whitespace, as the full parser does.
      return parseValue(buf.toString('utf8', j, end).trim().split(/\s+/)[0] ?? '');
    }
  }
  return parseValue(buf.toString('latin1', s, e));
}

/** Bytes of a metric name, for scanFamily (build once, reuse per scrape). */
export const familyNeedle = (name: string): Buffer => Buffer.from(name, 'utf8');

/**
 * Folds the samples of the family `name` (see familyNeedle) in `page`;
 * undefined when the page has no well-formed sample of it.
 */
export function scanFamily(page: Buffer, name: Buffer): FamilyFold | undefined {
  let samples = 0;
  let sum = 0;
  let max = -Infinity;
  const n = page.length;
  let from = 0;
  for (;;) {
    const k = page.indexOf(name, from);
    if (k < 0) break;
    from = k + 1;
    if (!atLineStart(page, k)) continue; // inside a comment, a label value or a longer name
    const j = k + name.length;
    let end = page.indexOf(LF, j);
    if (end < 0) end = n;
    const c = j < end ? page[j] : -1;
    if (c !== LBRACE && c !== SP && c !== TAB) {
      // A longer name (`..._by_reason`), or the name alone without a value.
      continue;
    }
    from = end + 1;
    const after = c === LBRACE ? skipLabels(page, j, end) : j;
    if (after < 0) continue;
    const v = sampleValue(page, after, end);
    if (v === undefined) continue;
    samples++;
    if (Number.isFinite(v)) {
      sum += v;
      if (v > max) max = v;
    }
  }
  return samples > 0 ? { samples, sum, max } : undefined;
}
