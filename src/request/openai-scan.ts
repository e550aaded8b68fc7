// The ext_proc hot path's reader of an OpenAI request body: one pass over
// its UTF-8 bytes that checks the whole text is JSON exactly as JSON.parse
// would accept it, and pulls out only what routing needs (model, stream, the
// prompt's ranges) without building the document. The prompt is rendered
// straight into one byte buffer for hashing and the length estimate; the
// prompt text and the chat messages become strings only if a plugin asks.
//
// It answers only requests it can answer exactly as parseOpenAIRequest
// (openai.ts) would. Anything else (invalid JSON, invalid UTF-8, a field of
// the wrong type, duplicate or escaped routing keys, lone surrogates, number
// forms other than plain digits in a token prompt) returns undefined, and
// the caller parses the body the full way, which gives the answer (or the
// 400) it always gave. So errors keep their statuses and messages by
// construction; the unit and fuzz tests check accepted bodies field by field.
//
// Depth needs no bound here: ext_proc bodies went through JsonShapeScanner
// (body-buffer.ts) as they arrived, so recursion is at most 128 deep.
import { isUtf8 } from 'node:buffer';
import type { ApiType, ChatMessage, LLMRequest } from '../scheduling/types.js';
import {
  promptBuffer,
  scratchPromptBuffer,
  sealPrompt,
  type PromptBytes,
  type PromptUtf8,
} from './prompt-bytes.js';
import { BYTES_PER_TOKEN } from './tokens.js';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

const IS_WS = new Uint8Array(256);
for (const c of [0x20, 0x09, 0x0a, 0x0d]) IS_WS[c] = 1;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[ZERO + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[0x41 + c] = 10 + c;
  HEX[0x61 + c] = 10 + c;
}

/** What one-byte escapes (\n, \t, ...) stand for; 0 = not a valid escape. */
const ESCAPED = new Uint8Array(256);
ESCAPED[QUOTE] = QUOTE;
ESCAPED[BACKSLASH] = BACKSLASH;
ESCAPED[0x2f] = 0x2f; // '/'
ESCAPED[0x62] = 0x08; // b
ESCAPED[0x66] = 0x0c; // f
ESCAPED[0x6e] = 0x0a; // n
ESCAPED[0x72] = 0x0d; // r
ESCAPED[0x74] = 0x09; // t

/** Thrown inside the scan when the fast path cannot answer; never escapes this module. */
const GIVE_UP = new Error('fall back to the full parse');

/** A JSON string's contents: bytes [start, end) between its quotes. */
interface Str {
  start: number;
  end: number;
  escaped: boolean;
  /** Its UTF-8 length once unescaped. */
  length: number;
}

interface MessageRanges {
  role: Str;
  /** The content's text pieces in order (a string content is one piece; parts give one per text). */
  pieces: Str[];
}

const KEY_MODEL = bytesOf('model');
const KEY_STREAM = bytesOf('stream');
const KEY_MESSAGES = bytesOf('messages');
const KEY_PROMPT = bytesOf('prompt');
const KEY_ROLE = bytesOf('role');
const KEY_CONTENT = bytesOf('content');
const KEY_TEXT = bytesOf('text');
const KEY_TYPE = bytesOf('type');

function bytesOf(s: string): Uint8Array {
  return Buffer.from(s, 'latin1');
}

class Scan {
  i = 0;
  /** The body as int32 words from its first 4-byte aligned byte (`pad`): strings are scanned a word at a time. */
  private words: Int32Array | undefined;
  private readonly pad: number;
  /** Where the next quote / backslash at or after a position is: found with native indexOf, reused until passed. */
  private nextQuote = -1;
  private nextBackslash = -1;

  constructor(
    readonly b: Buffer,
    readonly n: number,
  ) {
    this.pad = (4 - (b.byteOffset & 3)) & 3;
  }

  ws(): void {
    const b = this.b;
    let i = this.i;
    while (i < this.n && IS_WS[b[i]!] === 1) i++;
    this.i = i;
  }

  /** The byte at the cursor after whitespace (-1 at the end). */
  peek(): number {
    this.ws();
    return this.i < this.n ? this.b[this.i]! : -1;
  }

  expect(c: number): void {
    if (this.peek() !== c) throw GIVE_UP;
    this.i++;
  }

  /**
   * The first quote, backslash or control character at or after `i` (n if
   * none). Quotes and backslashes are found natively (memchr); the bytes
   * before the first of them are checked for control characters two words
   * (eight bytes) at a time: a word has a byte below 0x20 exactly when the
   * classic SWAR test sets a high bit. Most of a prompt's bytes pass here.
   */
  private stringRun(i: number): number {
    const b = this.b;
    const n = this.n;
    if (this.nextQuote < i) {
      const q = b.indexOf(QUOTE, i);
      this.nextQuote = q < 0 || q >= n ? n : q;
    }
    if (this.nextBackslash < i) {
      const q = b.indexOf(BACKSLASH, i);
      this.nextBackslash = q < 0 || q >= n ? n : q;
    }
    const stop = Math.min(this.nextQuote, this.nextBackslash);
    const pad = this.pad;
    while (i < stop && ((i - pad) & 3) !== 0) {
      if (b[i]! < 0x20) return i;
      i++;
    }
    // Made on the first string long enough to reach a word boundary.
    const w = (this.words ??= new Int32Array(
      b.buffer,
      b.byteOffset + Math.min(pad, n),
      Math.max(0, n - pad) >> 2,
    ));
    let k = (i - pad) >> 2;
    const kn = (stop - pad) >> 2;
    for (; k + 1 < kn; k += 2) {
      const x = w[k]!;
      const y = w[k + 1]!;
      if ((((x - 0x20202020) & ~x) | ((y - 0x20202020) & ~y)) & 0x80808080) break;
    }
    i = Math.max(i, pad + (k << 2));
    while (i < stop && b[i]! >= 0x20) i++;
    return i;
  }

  /** A string at the cursor (which is on its opening quote). */
  str(): Str {
    const b = this.b;
    let i = this.i + 1;
    const start = i;
    let escaped = false;
    // Bytes that unescaping removes: \n is 2 bytes for 1, \u00e9 6 for 2, a surrogate pair 12 for 4.
    let saved = 0;
    for (;;) {
      i = this.stringRun(i);
      if (i >= this.n) throw GIVE_UP;
      const c = b[i]!;
      if (c === QUOTE) break;
      if (c !== BACKSLASH) throw GIVE_UP; // a raw control character
      escaped = true;
      const e = b[i + 1] ?? 0;
      if (e === 0x75) {
        const cu = this.hex4(i + 2);
        i += 6;
        if (cu >= 0xd800 && cu <= 0xdfff) {
          // Only whole surrogate pairs: a lone one would decode differently from its UTF-8.
          if (cu >= 0xdc00 || b[i] !== BACKSLASH || b[i + 1] !== 0x75) throw GIVE_UP;
          const lo = this.hex4(i + 2);
          if (lo < 0xdc00 || lo > 0xdfff) throw GIVE_UP;
          i += 6;
          saved += 8;
        } else saved += cu < 0x80 ? 5 : cu < 0x800 ? 4 : 3;
      } else if (ESCAPED[e] !== 0) {
        i += 2;
        saved += 1;
      } else throw GIVE_UP;
    }
    this.i = i + 1;
    return { start, end: i, escaped, length: i - start - saved };
  }

  private hex4(at: number): number {
    if (at + 4 > this.n) throw GIVE_UP;
    const b = this.b;
    const h0 = HEX[b[at]!]!;
    const h1 = HEX[b[at + 1]!]!;
    const h2 = HEX[b[at + 2]!]!;
    const h3 = HEX[b[at + 3]!]!;
    if ((h0 | h1 | h2 | h3) < 0) throw GIVE_UP;
    return (h0 << 12) | (h1 << 8) | (h2 << 4) | h3;
  }

  /** A key (cursor on its quote) followed by its colon. Escaped keys are given up on: they may spell a routing key. */
  key(): Str {
    if (this.b[this.i] !== QUOTE) throw GIVE_UP;
    const k = this.str();
    this.expect(COLON);
    this.ws();
    return k;
  }

  keyIs(k: Str, name: Uint8Array): boolean {
    if (k.end - k.start !== name.length) return false;
    for (let j = 0; j < name.length; j++) if (this.b[k.start + j] !== name[j]) return false;
    return true;
  }

  /** A number in JSON's grammar; returns its value when it is plain digits of at most 15, else -1. */
  num(): number {
    const b = this.b;
    const n = this.n;
    let i = this.i;
    let plain = true;
    if (b[i] === MINUS) {
      plain = false;
      i++;
    }
    const intStart = i;
    if (b[i] === ZERO) i++;
    else if (i < n && b[i]! > ZERO && b[i]! <= NINE) while (i < n && b[i]! >= ZERO && b[i]! <= NINE) i++;
    else throw GIVE_UP;
    const intEnd = i;
    if (b[i] === DOT) {
      plain = false;
      i++;
      const s = i;
      while (i < n && b[i]! >= ZERO && b[i]! <= NINE) i++;
      if (i === s) throw GIVE_UP;
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      plain = false;
      i++;
      if (b[i] === 0x2b || b[i] === MINUS) i++;
      const s = i;
      while (i < n && b[i]! >= ZERO && b[i]! <= NINE) i++;
      if (i === s) throw GIVE_UP;
    }
    this.i = i;
    if (!plain || intEnd - intStart > 15) return -1;
    let v = 0;
    for (let j = intStart; j < intEnd; j++) v = v * 10 + (b[j]! - ZERO);
    return v;
  }

  /** true / false / null at the cursor: 1 / 0 / -1. */
  literal(): number {
    const b = this.b;
    const i = this.i;
    if (b[i] === 0x74 && b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65) {
      this.i = i + 4;
      return 1;
    }
    if (b[i] === 0x66 && b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65) {
      this.i = i + 5;
      return 0;
    }
    if (b[i] === 0x6e && b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c) {
      this.i = i + 4;
      return -1;
    }
    throw GIVE_UP;
  }

  /** Any JSON value at the cursor, checked and passed over. */
  skip(): void {
    const c = this.peek();
    if (c === QUOTE) this.str();
    else if (c === OPEN_BRACE) this.members(() => this.skip());
    else if (c === OPEN_BRACKET) this.elements(() => this.skip());
    else if (c === MINUS || (c >= ZERO && c <= NINE)) this.num();
    else this.literal();
  }

  /** An object at the cursor; `member` reads each value after its key (cursor on the value). */
  members(member: (key: Str) => void): void {
    this.i++; // {
    if (this.peek() === CLOSE_BRACE) {
      this.i++;
      return;
    }
    for (;;) {
      member(this.key());
      const c = this.peek();
      this.i++;
      if (c === CLOSE_BRACE) return;
      if (c !== COMMA) throw GIVE_UP;
      this.ws();
    }
  }

  /** An array at the cursor; `element` reads each (cursor on it, after whitespace). */
  elements(element: (index: number) => void): void {
    this.i++; // [
    if (this.peek() === CLOSE_BRACKET) {
      this.i++;
      return;
    }
    for (let k = 0; ; k++) {
      this.ws();
      element(k);
      const c = this.peek();
      this.i++;
      if (c === CLOSE_BRACKET) return;
      if (c !== COMMA) throw GIVE_UP;
    }
  }
}

/** The decoded text of a JSON string's contents. */
function textOf(b: Buffer, s: Str): string {
  if (!s.escaped) return b.toString('utf8', s.start, s.end);
  return JSON.parse(b.toString('utf8', s.start - 1, s.end + 1)) as string;
}

/**
 * Writes a JSON string's contents, unescaped, as UTF-8 at `o`, stopping at
 * `limit` (maybe inside a character: the bytes are what is hashed); returns
 * the end. Its escapes were checked by Scan.str.
 */
function writeText(b: Buffer, s: Str, out: Buffer, o: number, limit: number): number {
  if (!s.escaped) return o + b.copy(out, o, s.start, Math.min(s.end, s.start + (limit - o)));
  let i = s.start;
  while (i < s.end && o < limit) {
    const bs = b.indexOf(BACKSLASH, i);
    const runEnd = bs < 0 || bs >= s.end ? s.end : bs;
    if (runEnd > i) o += b.copy(out, o, i, Math.min(runEnd, i + (limit - o)));
    if (runEnd === s.end || o >= limit) break;
    const e = b[runEnd + 1]!;
    if (e !== 0x75) {
      out[o++] = ESCAPED[e]!;
      i = runEnd + 2;
      continue;
    }
    let cp = hexAt(b, runEnd + 2);
    i = runEnd + 6;
    if (cp >= 0xd800 && cp <= 0xdbff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (hexAt(b, i + 2) - 0xdc00);
      i += 6;
    }
    if (cp < 0x80) out[o++] = cp;
    else if (cp < 0x800) o = put(out, o, limit, 0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
    else if (cp < 0x10000)
      o = put(out, o, limit, 0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
    else
      o = put(
        out,
        o,
        limit,
        0xf0 | (cp >> 18),
        0x80 | ((cp >> 12) & 0x3f),
        0x80 | ((cp >> 6) & 0x3f),
        0x80 | (cp & 0x3f),
      );
  }
  return o;
}

function put(out: Buffer, o: number, limit: number, ...bytes: number[]): number {
  for (const x of bytes) if (o < limit) out[o++] = x;
  return o;
}

function hexAt(b: Buffer, at: number): number {
  return (HEX[b[at]!]! << 12) | (HEX[b[at + 1]!]! << 8) | (HEX[b[at + 2]!]! << 4) | HEX[b[at + 3]!]!;
}

/** Body fields the scan found. */
interface Found {
  model?: Str;
  stream?: boolean;
  messages?: MessageRanges[];
  /** Byte range of the `messages` array value (forwarded as is to /match_sort). */
  messagesSpan?: { start: number; end: number };
  prompt?: Str[];
  tokenIds?: number[];
}

function scanMessages(s: Scan): MessageRanges[] {
  if (s.b[s.i] !== OPEN_BRACKET) throw GIVE_UP;
  const out: MessageRanges[] = [];
  s.elements(() => {
    if (s.b[s.i] !== OPEN_BRACE) throw GIVE_UP;
    let role: Str | undefined;
    let pieces: Str[] | undefined;
    s.members((k) => {
      if (k.escaped) throw GIVE_UP;
      if (s.keyIs(k, KEY_ROLE)) {
        if (role || s.b[s.i] !== QUOTE) throw GIVE_UP;
        role = s.str();
        if (role.end === role.start) throw GIVE_UP;
      } else if (s.keyIs(k, KEY_CONTENT)) {
        if (pieces) throw GIVE_UP;
        pieces = scanContent(s);
      } else s.skip();
    });
    if (!role) throw GIVE_UP;
    out.push({ role, pieces: pieces ?? [] });
  });
  if (out.length === 0) throw GIVE_UP;
  return out;
}

function scanContent(s: Scan): Str[] {
  const c = s.b[s.i];
  if (c === QUOTE) return [s.str()];
  if (c === OPEN_BRACKET) {
    const pieces: Str[] = [];
    s.elements(() => {
      if (s.b[s.i] !== OPEN_BRACE) throw GIVE_UP;
      let text: Str | undefined;
      let typeSeen = false;
      let typeIsText = false;
      s.members((k) => {
        if (k.escaped) throw GIVE_UP;
        if (s.keyIs(k, KEY_TEXT)) {
          if (text || s.b[s.i] !== QUOTE) throw GIVE_UP;
          text = s.str();
        } else if (s.keyIs(k, KEY_TYPE)) {
          if (typeSeen) throw GIVE_UP;
          typeSeen = true;
          if (s.b[s.i] === QUOTE) {
            const t = s.str();
            if (t.escaped) throw GIVE_UP;
            typeIsText = s.keyIs(t, KEY_TEXT);
          } else s.skip();
        } else s.skip();
      });
      // A text part without its text is the full parse's 400 to give.
      if (text) pieces.push(text);
      else if (typeIsText) throw GIVE_UP;
    });
    return pieces;
  }
  if (s.literal() !== -1) throw GIVE_UP; // null is no content; true/false are the full parse's 400
  return [];
}

function scanPrompt(s: Scan, found: Found): void {
  const c = s.b[s.i];
  if (c === QUOTE) {
    const p = s.str();
    if (p.end === p.start) throw GIVE_UP;
    found.prompt = [p];
    return;
  }
  if (c !== OPEN_BRACKET) throw GIVE_UP;
  const strings: Str[] = [];
  const ids: number[] = [];
  s.elements(() => {
    const e = s.b[s.i]!;
    if (e === QUOTE && ids.length === 0) strings.push(s.str());
    else if (e >= ZERO && e <= NINE && strings.length === 0) {
      const v = s.num();
      if (v < 0) throw GIVE_UP;
      ids.push(v);
    } else throw GIVE_UP;
  });
  if (ids.length > 0) found.tokenIds = ids;
  else if (strings.length > 0) found.prompt = strings;
  else throw GIVE_UP;
}

function scanBody(s: Scan, apiType: ApiType): Found {
  const found: Found = {};
  if (s.peek() !== OPEN_BRACE) throw GIVE_UP;
  s.members((k) => {
    if (k.escaped) throw GIVE_UP;
    if (s.keyIs(k, KEY_MODEL)) {
      if (found.model || s.b[s.i] !== QUOTE) throw GIVE_UP;
      found.model = s.str();
    } else if (s.keyIs(k, KEY_STREAM)) {
      if (found.stream !== undefined) throw GIVE_UP;
      const v = s.literal();
      found.stream = v === 1;
    } else if (apiType === 'chat' && s.keyIs(k, KEY_MESSAGES)) {
      if (found.messages) throw GIVE_UP;
      const start = s.i;
      found.messages = scanMessages(s);
      found.messagesSpan = { start, end: s.i };
    } else if (apiType !== 'chat' && s.keyIs(k, KEY_PROMPT)) {
      if (found.prompt || found.tokenIds) throw GIVE_UP;
      scanPrompt(s, found);
    } else s.skip();
  });
  s.ws();
  if (s.i !== s.n) throw GIVE_UP;
  return found;
}

const CHAT_END = Buffer.from('<|assistant|>\n');
const ROLE_OPEN = Buffer.from('<|');
const ROLE_CLOSE = Buffer.from('|>\n');
const NEWLINE = Buffer.from('\n');

/**
 * The body the scan's ranges point into. A pooled body is given back to its
 * pool after routing (stream.ts); reading it after that would read another
 * request's bytes, so it fails loudly instead.
 */
class BodyRef {
  private b: Buffer | undefined;

  constructor(b: Buffer) {
    this.b = b;
  }

  get bytes(): Buffer {
    if (!this.b) throw new Error('request body read after it was released');
    return this.b;
  }

  detach(): void {
    this.b = undefined;
  }
}

/** A piece of a rendered prompt: a JSON string of the body, or template text. */
type Piece = Str | Buffer;

/** The prompt as pieces of the body and template text; bytes are rendered only as far as asked. */
class RenderedPrompt implements PromptUtf8 {
  private rendered: PromptBytes | undefined;

  constructor(
    private readonly body: BodyRef,
    private readonly pieces: Piece[],
    readonly length: number,
  ) {}

  head(maxBytes: number): PromptBytes {
    const want = Math.min(Math.max(0, maxBytes), this.length);
    if (this.rendered && this.rendered.bytes.length >= want)
      return want === this.rendered.bytes.length ? this.rendered : sealedView(this.rendered, want);
    this.rendered = this.render(promptBuffer(want), want);
    return this.rendered;
  }

  /** head's bytes, rendered into the shared scratch unless already rendered (not kept: see PromptUtf8). */
  transientHead(maxBytes: number): PromptBytes {
    const want = Math.min(Math.max(0, maxBytes), this.length);
    if (this.rendered && this.rendered.bytes.length >= want)
      return want === this.rendered.bytes.length ? this.rendered : sealedView(this.rendered, want);
    return this.render(scratchPromptBuffer(want), want);
  }

  private render(out: Buffer, want: number): PromptBytes {
    const body = this.body.bytes;
    let o = 0;
    for (const p of this.pieces) {
      if (o >= want) break;
      if (Buffer.isBuffer(p)) o += p.copy(out, o, 0, Math.min(p.length, want - o));
      else o = writeText(body, p, out, o, want);
    }
    return sealPrompt(out, o);
  }
}

/** A shorter head of already rendered bytes (its own copy: the padding of the last word must be zero). */
function sealedView(r: PromptBytes, length: number): PromptBytes {
  const out = promptBuffer(length);
  out.set(r.bytes.subarray(0, length));
  return sealPrompt(out, length);
}

/** renderChat (chat-template.ts) as pieces: `<|role|>\ncontent\n` per message, then `<|assistant|>\n`. */
function chatPrompt(b: BodyRef, messages: MessageRanges[]): RenderedPrompt {
  const pieces: Piece[] = [];
  let length = CHAT_END.length;
  for (const m of messages) {
    pieces.push(ROLE_OPEN, m.role, ROLE_CLOSE);
    length += ROLE_OPEN.length + m.role.length + ROLE_CLOSE.length + NEWLINE.length;
    for (const p of m.pieces) {
      pieces.push(p);
      length += p.length;
    }
    pieces.push(NEWLINE);
  }
  pieces.push(CHAT_END);
  return new RenderedPrompt(b, pieces, length);
}

function joinedPrompt(b: BodyRef, strings: Str[]): RenderedPrompt {
  let length = 0;
  for (const p of strings) length += p.length;
  return new RenderedPrompt(b, strings, length);
}

function messagesOf(b: Buffer, ranges: MessageRanges[]): ChatMessage[] {
  return ranges.map((m) => {
    let content = '';
    for (const p of m.pieces) content += textOf(b, p);
    return { role: textOf(b, m.role), content };
  });
}

/**
 * An LLMRequest whose prompt text and messages are decoded from the body
 * only when read. They are accessors on the prototype (an object literal's
 * own accessors cost ~2.6 us per request, a class instance ~0.07): an object
 * spread of this request would lose them, so callers set fields instead of
 * copying (stream.ts sets `model` for a rewrite), and JSON gets the plain shape.
 */
class ScannedLLMRequest implements LLMRequest {
  promptTokens = 0;
  stream = false;
  tokenIds?: number[];
  private text: string | undefined;
  private decodedMessages: ChatMessage[] | undefined;

  constructor(
    readonly requestId: string,
    public model: string,
    readonly apiType: ApiType,
    readonly headers: Readonly<Record<string, string>>,
    private readonly body: BodyRef,
    readonly promptUtf8: PromptUtf8 | undefined,
    private messageRanges: MessageRanges[] | undefined,
    private readonly messagesSpan: { start: number; end: number } | undefined,
  ) {}

  /** The `messages` array as the client sent it, while nobody replaced the messages. */
  get messagesJson(): (() => Uint8Array) | undefined {
    const span = this.messagesSpan;
    if (!span || !this.messageRanges) return undefined;
    return () => this.body.bytes.subarray(span.start, span.end);
  }

  get promptText(): string {
    if (this.text === undefined) {
      const p = this.promptUtf8;
      const bytes = p ? p.head(p.length).bytes : new Uint8Array(0);
      this.text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('utf8');
    }
    return this.text;
  }

  set promptText(v: string) {
    this.text = v;
  }

  get messages(): ChatMessage[] | undefined {
    if (this.messageRanges && !this.decodedMessages)
      this.decodedMessages = messagesOf(this.body.bytes, this.messageRanges);
    return this.decodedMessages;
  }

  set messages(v: ChatMessage[] | undefined) {
    this.messageRanges = undefined;
    this.decodedMessages = v;
  }

  /** The plain LLMRequest shape (logs, tests): never the body bytes. */
  toJSON(): Omit<LLMRequest, 'promptUtf8'> {
    const { requestId, model, apiType, promptText, messages, tokenIds, promptTokens, stream, headers } = this;
    return { requestId, model, apiType, promptText, messages, tokenIds, promptTokens, stream, headers };
  }
}

export interface ScannedRequest {
  request: LLMRequest;
  /** The body decoded in full, for the rare request whose body must be rewritten. */
  json(): Record<string, unknown>;
  /**
   * The body is about to be given back to its pool: from now on, a part of
   * the request not decoded yet throws instead of reading it.
   */
  detach(): void;
}

/**
 * The LLMRequest of an OpenAI request body, or undefined when only the full
 * parse can answer it (see the top of this file). `modelCharLimit` is
 * MAX_MODEL_CHARS (passed in to keep this module free of openai.ts).
 */
export function scanOpenAIRequest(
  apiType: ApiType,
  body: Buffer,
  headers: Readonly<Record<string, string>>,
  requestId: string,
  modelCharLimit: number,
): ScannedRequest | undefined {
  let found: Found;
  try {
    // JSON.parse sees the body decoded, invalid sequences replaced: only valid UTF-8 reads the same as bytes.
    if (!isUtf8(body)) return undefined;
    found = scanBody(new Scan(body, body.length), apiType);
  } catch (e) {
    if (e === GIVE_UP) return undefined;
    throw e;
  }
  if (!found.model || found.model.end === found.model.start) return undefined;
  const model = textOf(body, found.model);
  if (model.length > modelCharLimit) return undefined;
  let prompt: PromptUtf8 | undefined;
  let messageRanges: MessageRanges[] | undefined;
  const ref = new BodyRef(body);
  if (apiType === 'chat') {
    if (!found.messages) return undefined;
    messageRanges = found.messages;
    prompt = chatPrompt(ref, messageRanges);
  } else if (found.prompt) prompt = joinedPrompt(ref, found.prompt);
  else if (!found.tokenIds) return undefined;

  const request = new ScannedLLMRequest(
    requestId,
    model,
    apiType,
    headers,
    ref,
    prompt,
    messageRanges,
    found.messagesSpan,
  );
  request.promptTokens = prompt ? Math.ceil(prompt.length / BYTES_PER_TOKEN) : found.tokenIds!.length;
  request.stream = found.stream === true;
  if (found.tokenIds) request.tokenIds = found.tokenIds;
  let json: Record<string, unknown> | undefined;
  return {
    request,
    json: () => (json ??= JSON.parse(ref.bytes.toString('utf8')) as Record<string, unknown>),
    detach: () => ref.detach(),
  };
}
