// The .pb.go literal reader behind upstream-descriptors.test.ts, on
// hand-written sources in both protoc-gen-go forms.
import { describe, expect, test } from 'vitest';
import { extractRawDesc } from './go-raw-desc.js';

/** A Go interpreted string literal for `bytes`, mixing the escape styles protoc-gen-go emits. */
function goString(bytes: Uint8Array): string {
  let out = '';
  bytes.forEach((b, i) => {
    if (b === 0x0a) out += '\\n';
    else if (b === 0x22) out += '\\"';
    else if (b === 0x5c) out += '\\\\';
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else if (i % 2) out += `\\${b.toString(8).padStart(3, '0')}`;
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  });
  return `"${out}"`;
}

describe('extractRawDesc', () => {
  test('string form: "" + literals with every escape kind, then the next declaration', () => {
    const src = [
      'package x',
      '',
      'const file_a_b_proto_rawDesc = "" +',
      '\t"\\n" +',
      '\t"\\x1fAb\\a\\b\\f\\r\\t\\v\\\\\\"\\101\\377" +',
      '\t"é\\u00e9\\U0001F600"',
      '',
      'var (',
      '\tfile_a_b_proto_rawDescOnce sync.Once',
      '\tfile_a_b_proto_rawDescData []byte',
      ')',
    ].join('\n');
    const expected = Buffer.concat([
      Buffer.from([0x0a, 0x1f, 0x41, 0x62, 7, 8, 12, 13, 9, 11, 0x5c, 0x22, 0x41, 0xff]),
      Buffer.from('éé😀', 'utf8'),
    ]);
    expect(extractRawDesc(src)).toEqual(expected);
  });

  test('every byte value survives both forms', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => (i * 7 + 3) % 256);
    const lines = [];
    for (let i = 0; i < all.length; i += 40) lines.push(goString(all.subarray(i, i + 40)));
    const stringForm = `const file_x_proto_rawDesc = "" +\n\t${lines.join(' +\n\t')}\n\nfunc f() {}\n`;
    expect(extractRawDesc(stringForm)).toEqual(Buffer.from(all));

    const list = [...all].map((b, i) => (i % 3 ? `0x${b.toString(16)}` : String(b)));
    const byteForm = `var file_x_proto_rawDesc = []byte{\n\t${list.join(', ')}, // last\n}\n`;
    expect(extractRawDesc(byteForm)).toEqual(Buffer.from(all));
  });

  test('raw string literals are read as written', () => {
    expect(extractRawDesc('const file_r_rawDesc = `a\\nb` + "c"\n')).toEqual(Buffer.from('a\\nbc'));
  });

  test.each([
    ['no declaration', 'package x\n', /found 0/],
    ['two declarations', 'const file_a_rawDesc = ""\nconst file_b_rawDesc = ""\n', /found 2/],
    ['unknown escape', 'const file_a_rawDesc = "\\q"\n', /unknown escape \\q/],
    ['short \\x escape', 'const file_a_rawDesc = "\\x4"\n', /bad escape digits/],
    ['octal over 255', 'const file_a_rawDesc = "\\477"\n', /out of range/],
    ['unterminated string', 'const file_a_rawDesc = "abc\n"\n', /unterminated/],
    ['byte over 255', 'var file_a_rawDesc = []byte{0x100}\n', /out of range/],
    ['not a literal', 'const file_a_rawDesc = someFunc()\n', /expected a string literal/],
  ])('rejects %s', (_name, src, error) => {
    expect(() => extractRawDesc(src, 'x.pb.go')).toThrow(error);
  });
});
