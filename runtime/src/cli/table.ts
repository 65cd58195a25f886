/**
 * Plain-text tables for CLI output whose column widths depend on the data (instance ids, workflow names). Pure.
 */

/**
 * The header and rows as lines, each column as wide as its widest cell and two spaces apart; the last column is
 * not padded, so a long summary never leaves trailing spaces.
 */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((title, column) => rows.reduce((widest, row) => Math.max(widest, (row[column] ?? '').length), title.length));
  const line = (cells: readonly string[]): string =>
    widths
      .map((width, column) => (column === widths.length - 1 ? (cells[column] ?? '') : (cells[column] ?? '').padEnd(width)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const CONTROL_ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * Text from a remote party made safe for a terminal line: control characters (newlines, escape sequences) are
 * shown as JSON escapes instead of acting on the terminal.
 */
export function printable(text: string): string {
  // Control characters, and the invisible ones that reorder or hide text (bidi controls, zero-width marks).
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, (char) => CONTROL_ESCAPES[char] ?? `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
