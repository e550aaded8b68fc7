// One byte pass over a JSON text, before JSON.parse sees it, that bounds
// what parsing can cost: the nesting depth (V8 parses any depth, and 14 MB
// of `[` costs ~800 MB and seconds of event loop) and the number of arrays
// and objects (each costs tens of bytes for its 2-3 bytes of text). It does
// not validate JSON: JSON.parse still does that; it only refuses shapes
// whose parse would cost far more than the text.
//
// The scan is incremental (push chunk by chunk, as bytes arrive) so a body
// can be refused at the chunk that goes too deep. It tracks only the state a
// JSON tokenizer needs to tell structure from string content (in a string,
// after a backslash), which is also what a later change needs to pull
// `model`, `stream` and the prompt out without materialising the document.
// UTF-8 needs no decoding here: every byte of a multi-byte sequence is
// >= 0x80, so it can never be mistaken for a quote, backslash or bracket,
// and a chunk boundary inside a character changes nothing.
import { RequestError } from './errors.js';

export interface JsonBounds {
  /** Deepest allowed nesting of arrays and objects (the top-level value is depth 1). */
  maxDepth: number;
  /** Arrays and objects allowed regardless of size. */
  baseContainers: number;
  /** Further arrays and objects allowed per byte of text (memory stays ~ linear in size). */
  containersPerByte: number;
}

/**
 * Defaults for request bodies. Depth 128 is serde_json's default and far
 * deeper than any OpenAI request (tool schemas nest a few dozen levels at
 * most). One container per 8 bytes is more than a chat of one-word
 * messages needs (about one per 15 bytes) while `[[],[],...]` (one per
 * 3 bytes) is refused.
 */
export const DEFAULT_JSON_BOUNDS: JsonBounds = {
  maxDepth: 128,
  baseContainers: 4096,
  containersPerByte: 1 / 8,
};

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

export class JsonShapeScanner {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private bytes = 0;
  /** Arrays and objects opened so far. */
  containers = 0;
  /** The deepest nesting seen so far. */
  maxDepthSeen = 0;

  constructor(private readonly bounds: JsonBounds = DEFAULT_JSON_BOUNDS) {}

  /** Scans the next bytes (or UTF-16 code units of a decoded text); throws RequestError 400 past a bound. */
  push(chunk: Uint8Array | string): void {
    const isText = typeof chunk === 'string';
    const n = chunk.length;
    let depth = this.depth;
    let inString = this.inString;
    let escaped = this.escaped;
    let containers = this.containers;
    let deepest = this.maxDepthSeen;
    const maxDepth = this.bounds.maxDepth;
    // String contents are skipped with native indexOf (most of a prompt's bytes);
    // the next quote and the next backslash are each looked up once and reused
    // until passed (looking the quote up again after every escape made a string
    // of 100k escapes cost 100k scans to its end: 0.4-0.8 s, quadratic).
    const find = isText
      ? (c: number, from: number) => chunk.indexOf(c === QUOTE ? '"' : '\\', from)
      : (c: number, from: number) => chunk.indexOf(c, from);
    let nextQuote = -2;
    let nextBackslash = -2;
    let i = 0;
    while (i < n) {
      if (inString) {
        if (escaped) {
          escaped = false;
          i++;
          continue;
        }
        if (nextQuote !== -1 && nextQuote < i) nextQuote = find(QUOTE, i);
        const q = nextQuote;
        if (nextBackslash !== -1 && nextBackslash < i) nextBackslash = find(BACKSLASH, i);
        if (nextBackslash !== -1 && (q === -1 || nextBackslash < q)) {
          // Skip the backslash and the character it escapes (maybe in the next chunk).
          i = nextBackslash + 2;
          if (i > n) escaped = true;
          continue;
        }
        if (q === -1) break; // the string goes on in the next chunk
        inString = false;
        i = q + 1;
        continue;
      }
      const c = isText ? chunk.charCodeAt(i) : chunk[i]!;
      i++;
      if (c === QUOTE) inString = true;
      else if (c === OPEN_BRACKET || c === OPEN_BRACE) {
        depth++;
        containers++;
        if (depth > deepest) {
          deepest = depth;
          if (depth > maxDepth) {
            this.maxDepthSeen = deepest;
            throw new RequestError(400, `request body nests deeper than ${maxDepth} levels`);
          }
        }
      } else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
        // Unbalanced closers are JSON.parse's error to report; the depth only must not go negative.
        if (depth > 0) depth--;
      }
    }
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
    this.containers = containers;
    this.maxDepthSeen = deepest;
    this.bytes += n;
  }

  /**
   * Ends the text: checks the container count against the whole size. Not
   * done per chunk, so a body gets the same answer however it is split (the
   * parse it protects happens only once the body is complete).
   */
  finish(): void {
    const { baseContainers, containersPerByte } = this.bounds;
    const allowed = baseContainers + Math.floor(this.bytes * containersPerByte);
    if (this.containers > allowed) {
      throw new RequestError(
        400,
        `request body has ${this.containers} arrays and objects in ${this.bytes} bytes (at most ${allowed} allowed)`,
      );
    }
  }
}

/** Scans a whole JSON text at once; throws RequestError 400 when a bound is exceeded. */
export function checkJsonShape(text: Uint8Array | string, bounds: JsonBounds = DEFAULT_JSON_BOUNDS): void {
  const scan = new JsonShapeScanner(bounds);
  scan.push(text);
  scan.finish();
}

/** JSON.parse after the shape check: a RequestError 400 for anything it refuses. */
export function parseBoundedJson(
  text: Uint8Array | string,
  bounds: JsonBounds = DEFAULT_JSON_BOUNDS,
): unknown {
  checkJsonShape(text, bounds);
  return parseJsonText(text);
}

/** JSON.parse of a text or its UTF-8 bytes whose shape was already checked; RequestError 400 when invalid. */
export function parseJsonText(text: Uint8Array | string): unknown {
  const s =
    typeof text === 'string'
      ? text
      : Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8');
  try {
    return JSON.parse(s);
  } catch (e) {
    throw new RequestError(400, `request body is not valid JSON: ${(e as Error).message}`);
  }
}
