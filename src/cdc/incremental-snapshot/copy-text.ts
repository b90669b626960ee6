import type { Tuple } from '../pgoutput-rows.js';

/**
 * PostgreSQL's COPY text format (`COPY … TO STDOUT`, the default format) read back into tuples of
 * the values' text forms — what node-postgres hands out for a query with every type parser off, so
 * the incremental snapshot renders a COPY chunk with the same RowJson as the stream (row-json.ts).
 *
 * The format (PostgreSQL's CopyAttributeOutText): one line per row ending in `\n`, columns
 * separated by a tab, SQL NULL written `\N`; in a value a backslash is `\\` and the control
 * characters backspace, form feed, newline, carriage return, tab and vertical tab are `\b \f \n \r
 * \t \v`; every other character is written as it is (the server's encoding: the CDC's connections
 * are UTF-8). COPY FROM's octal (`\123`) and hex (`\x41`) escapes are read too, though COPY TO does
 * not write them.
 *
 * Pure; checked against node-postgres's values in test/cdc/copy-text.test.ts.
 */

/** The character a backslash escape stands for (b f n r t v; any other is the character itself). */
function unescapeChar(c: string): string {
  switch (c) {
    case 'b':
      return '\b';
    case 'f':
      return '\f';
    case 'n':
      return '\n';
    case 'r':
      return '\r';
    case 't':
      return '\t';
    case 'v':
      return '\v';
    default:
      return c;
  }
}

const OCTAL = /^[0-7]{1,3}/;
const HEX = /^x[0-9a-fA-F]{1,2}/;

/** One field's value: `\N` is NULL; a field without a backslash is the value itself. */
export function copyTextValue(field: string): string | null {
  if (field.indexOf('\\') < 0) return field;
  if (field === '\\N') return null;
  let out = '';
  let from = 0;
  for (let i = field.indexOf('\\'); i >= 0 && i < field.length - 1; i = field.indexOf('\\', from)) {
    out += field.slice(from, i);
    const rest = field.slice(i + 1, i + 4);
    const oct = OCTAL.exec(rest);
    const hex = oct ? null : HEX.exec(rest);
    if (oct) {
      out += String.fromCharCode(parseInt(oct[0], 8) & 0xff);
      from = i + 1 + oct[0].length;
    } else if (hex) {
      out += String.fromCharCode(parseInt(hex[0].slice(1), 16));
      from = i + 1 + hex[0].length;
    } else {
      out += unescapeChar(field.charAt(i + 1));
      from = i + 2;
    }
  }
  return out + field.slice(from);
}

/** One row of COPY text (`line` without or with its newline) as a tuple of `columns` values. */
export function copyTextRow(line: string, columns: number): Tuple {
  const end = line.charCodeAt(line.length - 1) === 10 ? line.length - 1 : line.length;
  const fields = line.slice(0, end).split('\t');
  if (fields.length !== columns)
    throw new Error(`COPY text: a row has ${fields.length} columns where ${columns} were expected`);
  const row: Tuple = new Array<string | null>(columns);
  for (let i = 0; i < columns; i++) row[i] = copyTextValue(fields[i] as string);
  return row;
}

/**
 * The rows of a COPY text stream, each a tuple of `columns` values. Throws on a row with another
 * number of columns or text not ending in a newline (a truncated stream).
 */
export function parseCopyText(data: Buffer | string, columns: number): Tuple[] {
  const text = typeof data === 'string' ? data : data.toString('utf8');
  const rows: Tuple[] = [];
  const n = text.length;
  if (n === 0) return rows;
  if (text.charCodeAt(n - 1) !== 10) throw new Error('COPY text: the stream does not end with a whole row');
  for (let pos = 0; pos < n;) {
    const end = text.indexOf('\n', pos);
    rows.push(copyTextRow(text.slice(pos, end), columns));
    pos = end + 1;
  }
  return rows;
}
