import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { signalsFromMetrics } from '../../../src/datalayer/metrics-scraper.js';
import { familyNeedle, scanFamily, type FamilyFold } from '../../../src/datalayer/prom-scan.js';
import { parsePromText } from '../../../src/datalayer/prom-text.js';

const W = 'vllm:num_requests_waiting';
const scan = (page: string, name = W): FamilyFold | undefined =>
  scanFamily(Buffer.from(page), familyNeedle(name));

/** The same fold computed from the full line parser: the reference the scanner must match. */
function reference(page: string, name: string): FamilyFold | undefined {
  const samples = parsePromText(page, new Set([name])).families.get(name);
  if (!samples || samples.length === 0) return undefined;
  let sum = 0;
  let max = -Infinity;
  for (const s of samples) {
    if (!Number.isFinite(s.value)) continue;
    sum += s.value;
    max = Math.max(max, s.value);
  }
  return { samples: samples.length, sum, max };
}

describe('scanFamily', () => {
  test('HELP/TYPE and other comments mentioning the name are not samples', () => {
    const page = [
      `# HELP ${W} Number of requests waiting.`,
      `# TYPE ${W} gauge`,
      `#${W} 99`,
      `# ${W}{engine="0"} 99`,
      `${W}{engine="0"} 3`,
    ].join('\n');
    expect(scan(page)).toEqual({ samples: 1, sum: 3, max: 3 });
  });

  test('a longer name that starts with the wanted one is another family', () => {
    const page = [
      `${W}_by_reason{reason="capacity"} 5`,
      `${W}_by_reason 6`,
      `${W}{engine="0"} 2`,
      `${W}x 7`,
    ].join('\n');
    expect(scan(page)).toEqual({ samples: 1, sum: 2, max: 2 });
    expect(scan(page, `${W}_by_reason`)).toEqual({ samples: 2, sum: 11, max: 6 });
  });

  test('labels with spaces, braces, commas, escaped quotes and the metric name inside are skipped whole', () => {
    const page = [
      `${W}{model_name="a b} {c", x="say \\"hi\\" \\\\", y="${W} 100"} 4`,
      `other{label="\n${W} 50\n"} 1`, // a raw newline inside a value ends the line: the next line is a sample
      `other{label="${W} 60"} 1`,
      `${W}{a="1",} 1`,
    ].join('\n');
    expect(scan(page)).toEqual({ samples: 3, sum: 55, max: 50 });
    expect(reference(page, W)).toEqual(scan(page));
  });

  test('malformed label sets and missing values are skipped like the full parser does', () => {
    const page = [
      `${W}{engine="0" 1`, // unterminated label set
      `${W}{engine=0} 1`, // unquoted value
      `${W}{engine} 1`, // no "="
      `${W}{engine="0\\"} 1`, // the escape eats the closing quote
      `${W}{engine="0"}`, // no value
      `${W}`, // name alone
      `${W} `, // blank value
      `${W} abc`, // not a number
      `${W}{engine="1"} 8`,
    ].join('\n');
    expect(scan(page)).toEqual({ samples: 1, sum: 8, max: 8 });
    expect(reference(page, W)).toEqual(scan(page));
  });

  test('NaN, +Inf, -Inf count as samples but not in sum/max; exponents and signs are read', () => {
    const page = [
      `${W}{e="0"} NaN`,
      `${W}{e="1"} +Inf`,
      `${W}{e="2"} -Inf`,
      `${W}{e="3"} 1.5e+01`,
      `${W}{e="4"} -2E-1`,
    ].join('\n');
    expect(scan(page)).toEqual({ samples: 5, sum: 14.8, max: 15 });
    expect(scan(`${W} NaN\n`)).toEqual({ samples: 1, sum: 0, max: -Infinity });
  });

  test('timestamps, tabs, leading blanks, CRLF and a missing final newline', () => {
    const page = `${W}{e="0"} 1 1700000000000\r\n  ${W}\t2\t1700000000001\r\n\t${W}{e="2"}   3\r\n${W} 4`;
    expect(scan(page)).toEqual({ samples: 4, sum: 10, max: 4 });
    expect(reference(page, W)).toEqual(scan(page));
  });

  test('a UTF-8 BOM before the first line, non-ASCII labels, and non-ASCII blanks after the value', () => {
    const page = `\ufeff${W}{model_name="模型 ü"} 2\n${W}{e="1"} 3\u00a0123\n`;
    expect(scan(page)).toEqual({ samples: 2, sum: 5, max: 3 });
  });

  test('absent family, empty page', () => {
    expect(scan('vllm:num_requests_running 1\n')).toBeUndefined();
    expect(scan('')).toBeUndefined();
  });

  test('agrees with the full parser on generated pages', () => {
    const names = [W, `${W}_by_reason`, 'vllm:num_requests_running', 'x'];
    const labelValue = fc.stringMatching(/^[ a-z"\\{},=\n#]{0,8}$/);
    const value = fc.constantFrom('1', '2.5', '-3', '1e3', 'NaN', '+Inf', '-Inf', '', 'x', '0x10', '.5');
    const line = fc.oneof(
      fc
        .record({
          lead: fc.constantFrom('', ' ', '\t', '# ', '#'),
          name: fc.constantFrom(...names),
          labels: fc.option(fc.array(fc.tuple(fc.constantFrom('a', 'b c'), labelValue), { maxLength: 3 })),
          sep: fc.constantFrom(' ', '\t', '  ', ''),
          value,
          ts: fc.constantFrom('', ' 1700000000000'),
          eol: fc.constantFrom('\n', '\r\n'),
        })
        .map(
          (l) =>
            `${l.lead}${l.name}${l.labels ? `{${l.labels.map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}` : ''}${l.sep}${l.value}${l.ts}${l.eol}`,
        ),
      fc.stringMatching(/^[a-z_:{}"= \\\n]{0,30}$/),
    );
    fc.assert(
      fc.property(fc.array(line, { maxLength: 12 }), fc.boolean(), (lines, trimEnd) => {
        let page = lines.join('');
        if (trimEnd) page = page.replace(/\n$/, '');
        for (const n of names) expect(scan(page, n)).toEqual(reference(page, n));
      }),
      { numRuns: 400 },
    );
  });
});

describe('signalsFromMetrics on bytes', () => {
  test('same answer for the page as bytes and as text', () => {
    const page = [
      `${W}{engine="0"} 1`,
      `${W}{engine="1"} 2`,
      'vllm:num_requests_running{engine="0"} 4',
      'vllm:kv_cache_usage_perc{engine="0"} NaN',
      'vllm:gpu_cache_usage_perc{engine="0"} 0.7',
      'vllm:gpu_cache_usage_perc{engine="1"} 0.2',
    ].join('\r\n');
    const expected = { waitingQueueSize: 3, runningRequests: 4, kvCacheUsage: 0.7, updatedAtMs: 9 };
    // The current KV gauge only reports NaN: the deprecated one is used, as before.
    expect(signalsFromMetrics(page, 9)).toEqual(expected);
    expect(signalsFromMetrics(Buffer.from(page), 9)).toEqual(expected);
  });

  test('KV usage is clamped to [0, 1]; counts that sum past the float range are unknown', () => {
    expect(signalsFromMetrics('vllm:kv_cache_usage_perc 1.5\nvllm:num_requests_running 2\n', 0)).toEqual({
      kvCacheUsage: 1,
      runningRequests: 2,
      updatedAtMs: 0,
    });
    expect(
      signalsFromMetrics(`${W}{e="0"} 1e308\n${W}{e="1"} 1e308\nvllm:num_requests_running 1\n`, 0),
    ).toEqual({
      runningRequests: 1,
      updatedAtMs: 0,
    });
  });
});
