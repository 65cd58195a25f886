/**
 * A strict JSON parser for bodies a policy decides on. `JSON.parse` is not enough there: it keeps the last of two
 * duplicate keys while other parsers keep the first, so `{"name":"get_inventory","name":"drop_table"}` could be
 * judged as one tool and executed as another; and it recurses without limit. This parser refuses duplicate keys,
 * stops at a nesting limit, reports where it failed, and records the source span of each element of a top-level
 * array so a batch can be forwarded byte for byte with entries removed.
 */

/** A JSON value as parsed here. Objects are plain objects (a `__proto__` key is an ordinary own property). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
/** A JSON object. */
export type JsonObject = { [key: string]: JsonValue };

/** A failure to parse: a syntax error, a duplicate key or a nesting limit, with the place it was found. */
export class JsonParseError extends Error {
  override readonly name = 'JsonParseError';
  /** `syntax` for malformed JSON, `duplicate-key` and `depth` for JSON this parser refuses on purpose. */
  readonly kind: 'syntax' | 'duplicate-key' | 'depth';
  /** Offset in the text (UTF-16 code units). */
  readonly offset: number;
  readonly line: number;
  readonly column: number;
  /** JSON Pointer of the value being read when it failed. */
  readonly pointer: string;

  constructor(kind: JsonParseError['kind'], message: string, text: string, offset: number, pointer: string) {
    const { line, column } = lineAndColumn(text, offset);
    super(`${message} at line ${line}, column ${column}`);
    this.kind = kind;
    this.offset = offset;
    this.line = line;
    this.column = column;
    this.pointer = pointer;
  }
}

/** The parsed value, and for a top-level array the `[start, end)` source span of each element. */
export interface ParsedJson {
  value: JsonValue;
  elementSpans: ReadonlyArray<readonly [number, number]> | undefined;
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let index = 0; index < offset && index < text.length; index += 1) {
    if (text.charCodeAt(index) === 0x0a) {
      line += 1;
      lineStart = index + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

/** Escapes one JSON Pointer reference token. */
export function pointerToken(token: string | number): string {
  return String(token).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Parses `text` as one JSON document, refusing duplicate keys and nesting deeper than `maxDepth` containers. */
export function parseStrictJson(text: string, maxDepth: number): ParsedJson {
  return new Parser(text, maxDepth).document();
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const ESCAPES: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };

class Parser {
  private position = 0;
  private readonly path: Array<string | number> = [];

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {}

  document(): ParsedJson {
    this.skipWhitespace();
    let value: JsonValue;
    let elementSpans: Array<readonly [number, number]> | undefined;
    if (this.text.charCodeAt(this.position) === 0x5b) {
      elementSpans = [];
      value = this.array(1, elementSpans);
    } else {
      value = this.value(0);
    }
    this.skipWhitespace();
    if (this.position < this.text.length) this.fail('syntax', 'unexpected text after the JSON value');
    return { value, elementSpans };
  }

  private fail(kind: JsonParseError['kind'], message: string, offset = this.position): never {
    throw new JsonParseError(kind, message, this.text, offset, this.path.length === 0 ? '' : `/${this.path.map(pointerToken).join('/')}`);
  }

  private skipWhitespace(): void {
    const text = this.text;
    let position = this.position;
    for (;;) {
      const code = text.charCodeAt(position);
      if (code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09) position += 1;
      else break;
    }
    this.position = position;
  }

  private value(depth: number): JsonValue {
    this.skipWhitespace();
    const code = this.text.charCodeAt(this.position);
    switch (code) {
      case 0x7b:
        return this.object(depth + 1);
      case 0x5b:
        return this.array(depth + 1, undefined);
      case 0x22:
        return this.string();
      case 0x74:
        return this.literal('true', true);
      case 0x66:
        return this.literal('false', false);
      case 0x6e:
        return this.literal('null', null);
      default:
        if (code === 0x2d || (code >= 0x30 && code <= 0x39)) return this.number();
        if (Number.isNaN(code)) this.fail('syntax', 'unexpected end of input');
        return this.fail('syntax', `unexpected character ${JSON.stringify(this.text[this.position])}`);
    }
  }

  private literal<T extends JsonValue>(word: string, value: T): T {
    if (!this.text.startsWith(word, this.position)) {
      this.fail('syntax', this.position + word.length > this.text.length ? 'unexpected end of input' : `unexpected character ${JSON.stringify(this.text[this.position])}`);
    }
    this.position += word.length;
    return value;
  }

  private enter(depth: number): void {
    if (depth > this.maxDepth) this.fail('depth', `nesting deeper than ${this.maxDepth} levels`);
  }

  private object(depth: number): JsonObject {
    this.enter(depth);
    this.position += 1;
    const out: JsonObject = {};
    this.skipWhitespace();
    if (this.text.charCodeAt(this.position) === 0x7d) {
      this.position += 1;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      if (this.text.charCodeAt(this.position) !== 0x22) this.fail('syntax', this.position >= this.text.length ? 'unexpected end of input' : 'expected a string key');
      const keyAt = this.position;
      const key = this.string();
      if (Object.prototype.hasOwnProperty.call(out, key)) {
        this.path.push(key);
        this.fail('duplicate-key', `duplicate key ${JSON.stringify(key)}`, keyAt);
      }
      this.skipWhitespace();
      if (this.text.charCodeAt(this.position) !== 0x3a) this.fail('syntax', this.position >= this.text.length ? 'unexpected end of input' : 'expected ":"');
      this.position += 1;
      this.path.push(key);
      const inner = this.value(depth);
      this.path.pop();
      // A literal `__proto__` key must stay data, never become the object's prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value: inner, enumerable: true, writable: true, configurable: true });
      else out[key] = inner;
      this.skipWhitespace();
      const next = this.text.charCodeAt(this.position);
      this.position += 1;
      if (next === 0x2c) continue;
      if (next === 0x7d) return out;
      this.fail('syntax', Number.isNaN(next) ? 'unexpected end of input' : 'expected "," or "}"', this.position - 1);
    }
  }

  private array(depth: number, spans: Array<readonly [number, number]> | undefined): JsonValue[] {
    this.enter(depth);
    this.position += 1;
    const out: JsonValue[] = [];
    this.skipWhitespace();
    if (this.text.charCodeAt(this.position) === 0x5d) {
      this.position += 1;
      return out;
    }
    for (;;) {
      this.skipWhitespace();
      const start = this.position;
      this.path.push(out.length);
      out.push(this.value(depth));
      this.path.pop();
      spans?.push([start, this.position]);
      this.skipWhitespace();
      const next = this.text.charCodeAt(this.position);
      this.position += 1;
      if (next === 0x2c) continue;
      if (next === 0x5d) return out;
      this.fail('syntax', Number.isNaN(next) ? 'unexpected end of input' : 'expected "," or "]"', this.position - 1);
    }
  }

  private string(): string {
    const text = this.text;
    let position = this.position + 1;
    let chunkStart = position;
    let out = '';
    for (;;) {
      const code = text.charCodeAt(position);
      if (code === 0x22) {
        out += text.slice(chunkStart, position);
        this.position = position + 1;
        return out;
      }
      if (Number.isNaN(code)) this.fail('syntax', 'unterminated string', position);
      if (code < 0x20) this.fail('syntax', 'control character in a string', position);
      if (code === 0x5c) {
        out += text.slice(chunkStart, position);
        const escape = text[position + 1];
        if (escape === 'u') {
          const hex = text.slice(position + 2, position + 6);
          if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('syntax', 'invalid \\u escape', position);
          out += String.fromCharCode(Number.parseInt(hex, 16));
          position += 6;
        } else {
          const replacement = escape === undefined ? undefined : ESCAPES[escape];
          if (replacement === undefined) this.fail('syntax', escape === undefined ? 'unterminated string' : 'invalid escape', position);
          out += replacement;
          position += 2;
        }
        chunkStart = position;
        continue;
      }
      position += 1;
    }
  }

  private number(): number {
    NUMBER.lastIndex = this.position;
    const found = NUMBER.exec(this.text);
    if (!found) this.fail('syntax', 'invalid number');
    const end = this.position + found[0].length;
    const after = this.text.charCodeAt(end);
    // "01", "1.", "1e" and "-" all stop the match early; what follows then cannot continue a valid document.
    if ((after >= 0x30 && after <= 0x39) || after === 0x2e || after === 0x65 || after === 0x45 || found[0] === '-') this.fail('syntax', 'invalid number');
    this.position = end;
    return Number(found[0]);
  }
}
