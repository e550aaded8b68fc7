// Reads the serialized FileDescriptorProto that protoc-gen-go embeds in every
// generated .pb.go file (`file_<path>_rawDesc`). Two generator forms exist:
//  - protoc-gen-go >= 1.36: `const file_x_rawDesc = "" + "\n" + "..."`, Go
//    interpreted string literals (escapes \n \x.. \ooo \a ...) joined with +;
//  - older releases: `var file_x_rawDesc = []byte{ 0x0a, 0x1f, ... }`.
// Only the literal syntax those forms use is accepted; anything else is an
// error naming the file, so a generator change cannot yield garbage bytes.

const DECL = /(?:const|var)\s+(file_\w+_rawDesc)\s*=\s*/g;

/** Bytes of the single `file_*_rawDesc` declaration in a .pb.go source. */
export function extractRawDesc(source: string, label = 'source'): Buffer {
  const decls = [...source.matchAll(DECL)];
  if (decls.length !== 1) {
    throw new Error(`${label}: expected one file_*_rawDesc declaration, found ${decls.length}`);
  }
  const decl = decls[0]!;
  const start = decl.index + decl[0].length;
  const parser = new GoLiteralParser(source, start, `${label} (${decl[1]})`);
  return source.startsWith('[]byte{', start) ? parser.byteSlice() : parser.stringConcat();
}

// Sticky: match exactly at lastIndex.
const SPACE = /(?:\s+|\/\/[^\n]*)+/y;
const BYTE = /0[xX][0-9a-fA-F]+|[1-9][0-9]*|0/y;

const SIMPLE_ESCAPES: Record<string, number> = {
  a: 0x07,
  b: 0x08,
  f: 0x0c,
  n: 0x0a,
  r: 0x0d,
  t: 0x09,
  v: 0x0b,
  '\\': 0x5c,
  '"': 0x22,
};

class GoLiteralParser {
  constructor(
    private readonly src: string,
    private pos: number,
    private readonly label: string,
  ) {}

  /** `"..." + "..." + ...` up to the first literal not followed by `+`. */
  stringConcat(): Buffer {
    const parts: Buffer[] = [];
    for (;;) {
      this.skipSpace();
      parts.push(this.stringLiteral());
      const afterLiteral = this.pos;
      this.skipSpace();
      if (this.src[this.pos] !== '+') {
        this.pos = afterLiteral;
        return Buffer.concat(parts);
      }
      this.pos++;
    }
  }

  /** `[]byte{ 0x0a, 10, ... }` (trailing comma and // comments allowed). */
  byteSlice(): Buffer {
    this.pos += '[]byte{'.length;
    const bytes: number[] = [];
    for (;;) {
      this.skipSpace();
      if (this.src[this.pos] === '}') return Buffer.from(bytes);
      BYTE.lastIndex = this.pos;
      const m = BYTE.exec(this.src);
      if (!m) this.fail('expected a byte value');
      const value = Number(m[0]);
      if (value > 0xff) this.fail(`byte value ${m[0]} out of range`);
      bytes.push(value);
      this.pos = BYTE.lastIndex;
      this.skipSpace();
      if (this.src[this.pos] === ',') this.pos++;
      else if (this.src[this.pos] !== '}') this.fail('expected , or }');
    }
  }

  private stringLiteral(): Buffer {
    if (this.src[this.pos] === '`') {
      // Raw string: no escapes; Go drops carriage returns from raw literals.
      const end = this.src.indexOf('`', this.pos + 1);
      if (end < 0) this.fail('unterminated raw string');
      const text = this.src.slice(this.pos + 1, end).replace(/\r/g, '');
      this.pos = end + 1;
      return Buffer.from(text, 'utf8');
    }
    if (this.src[this.pos] !== '"') this.fail('expected a string literal');
    this.pos++;
    const out: number[] = [];
    for (;;) {
      const ch = this.src[this.pos];
      if (ch === undefined || ch === '\n') this.fail('unterminated string literal');
      if (ch === '"') {
        this.pos++;
        return Buffer.from(out);
      }
      if (ch !== '\\') {
        // Go source is UTF-8: a literal character stands for its UTF-8 bytes.
        const cp = this.src.codePointAt(this.pos)!;
        const text = String.fromCodePoint(cp);
        out.push(...Buffer.from(text, 'utf8'));
        this.pos += text.length;
        continue;
      }
      this.pos++;
      out.push(...this.escape());
    }
  }

  /** One escape sequence after the backslash, as bytes. */
  private escape(): number[] {
    const ch = this.src[this.pos] ?? '';
    const simple = SIMPLE_ESCAPES[ch];
    if (simple !== undefined) {
      this.pos++;
      return [simple];
    }
    if (ch === 'x') return [this.digits(this.pos + 1, 2, 16)];
    if (ch >= '0' && ch <= '7') {
      const value = this.digits(this.pos, 3, 8);
      if (value > 0xff) this.fail(`octal escape ${value.toString(8)} out of range`);
      return [value];
    }
    if (ch === 'u' || ch === 'U') {
      const cp = this.digits(this.pos + 1, ch === 'u' ? 4 : 8, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) this.fail(`invalid code point ${cp.toString(16)}`);
      return [...Buffer.from(String.fromCodePoint(cp), 'utf8')];
    }
    this.fail(`unknown escape \\${ch}`);
  }

  /** Exactly `count` digits of `radix` starting at `from`; moves past them. */
  private digits(from: number, count: number, radix: 8 | 16): number {
    const text = this.src.slice(from, from + count);
    const pattern = radix === 8 ? /^[0-7]+$/ : /^[0-9a-fA-F]+$/;
    if (text.length !== count || !pattern.test(text)) this.fail(`bad escape digits "${text}"`);
    this.pos = from + count;
    return parseInt(text, radix);
  }

  private skipSpace(): void {
    SPACE.lastIndex = this.pos;
    if (SPACE.test(this.src)) this.pos = SPACE.lastIndex;
  }

  private fail(why: string): never {
    const line = this.src.slice(0, this.pos).split('\n').length;
    throw new Error(`${this.label}: ${why} at line ${line}`);
  }
}
