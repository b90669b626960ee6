/**
 * A cursor over JSON text for the text encoder (text-encoder.ts): reads the scalars of a flat JSON
 * object one at a time, without building the object. Each read returns the value JSON.parse would
 * give for it; `undefined` (or NO_NUMBER) means the text at the cursor is not that kind of value
 * (the caller gives up on the record and takes the JSON.parse path). Pure over its text.
 */

/** What `number()` returns when no JSON number starts at the cursor. */
export const NO_NUMBER = Symbol('no number');

const QUOTE = 34;
const BACKSLASH = 92;

export class JsonCursor {
  text = '';
  pos = 0;

  reset(text: string): void {
    this.text = text;
    this.pos = 0;
  }

  /** Steps over `literal` when the text continues with it. */
  skip(literal: string): boolean {
    if (!this.text.startsWith(literal, this.pos)) return false;
    this.pos += literal.length;
    return true;
  }

  /** The character code at the cursor (NaN at the end). */
  peek(): number {
    return this.text.charCodeAt(this.pos);
  }

  /** Steps over `null`. */
  null(): boolean {
    return this.skip('null');
  }

  /** A JSON string at the cursor, unescaped (escapes, rare but for json columns, through JSON.parse). */
  string(): string | undefined {
    const text = this.text;
    const start = this.pos;
    if (text.charCodeAt(start) !== QUOTE) return undefined;
    let end = text.indexOf('"', start + 1);
    if (end < 0) return undefined;
    if (text.charCodeAt(end - 1) !== BACKSLASH) {
      const s = text.slice(start + 1, end);
      if (s.indexOf('\\') < 0) {
        this.pos = end + 1;
        return s;
      }
    }
    // The closing quote: the first one after an even run of backslashes (the opening quote stops it).
    for (;;) {
      let k = end - 1;
      while (text.charCodeAt(k) === BACKSLASH) k--;
      if ((end - 1 - k) % 2 === 0) break;
      end = text.indexOf('"', end + 1);
      if (end < 0) return undefined;
    }
    this.pos = end + 1;
    return JSON.parse(text.slice(start, end + 1)) as string;
  }

  /** A JSON number at the cursor. */
  number(): number | typeof NO_NUMBER {
    const text = this.text;
    const start = this.pos;
    let i = start;
    for (
      let c = text.charCodeAt(i);
      (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69;
    ) {
      c = text.charCodeAt(++i);
    }
    if (i === start) return NO_NUMBER;
    const slice = text.slice(start, i);
    // Number() accepts what JSON does not ("+1", "1."), JSON.parse is the judge of those.
    const first = slice.charCodeAt(0);
    if (first === 43 || slice.charCodeAt(slice.length - 1) === 46) return NO_NUMBER;
    const n = Number(slice);
    if (Number.isNaN(n)) return NO_NUMBER;
    this.pos = i;
    return n;
  }

  /** A JSON string, number, boolean or null at the cursor; undefined for anything else. */
  scalar(): string | number | boolean | null | undefined {
    const c = this.peek();
    if (c === QUOTE) return this.string();
    if (c === 110 /* n */) return this.null() ? null : undefined;
    if (c === 116 /* t */) return this.skip('true') ? true : undefined;
    if (c === 102 /* f */) return this.skip('false') ? false : undefined;
    const n = this.number();
    return n === NO_NUMBER ? undefined : n;
  }
}
