/** Formatting of the benchmark's report: Markdown tables padded so they also read well in a terminal. */

/** Column alignment. */
export type Align = 'left' | 'right';

/** A Markdown table whose columns are padded to equal width. */
export function markdownTable(header: string[], rows: string[][], align: Align[] = []): string {
  const widths = header.map((cell, column) => Math.max(cell.length, 3, ...rows.map((row) => (row[column] ?? '').length)));
  const pad = (cell: string, column: number): string => ((align[column] ?? (column === 0 ? 'left' : 'right')) === 'left' ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0));
  const line = (cells: string[]): string => `| ${cells.map((cell, column) => pad(cell, column)).join(' | ')} |`;
  const rule = `|${widths.map((width, column) => ((align[column] ?? (column === 0 ? 'left' : 'right')) === 'left' ? `:${'-'.repeat(width + 1)}` : `${'-'.repeat(width + 1)}:`)).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}

/** Milliseconds with two decimals (three below 0.1 ms). */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return Math.abs(value) < 0.1 ? value.toFixed(3) : value.toFixed(2);
}

/** A signed difference in milliseconds. */
export function signedMs(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  return `${value >= 0 ? '+' : ''}${ms(value)}`;
}

/** A ratio such as `×3.2`. */
export function ratio(value: number): string {
  return Number.isFinite(value) ? `×${value.toFixed(1)}` : 'n/a';
}

/** Mebibytes with one decimal. */
export function mib(value: number): string {
  return Number.isFinite(value) ? value.toFixed(1) : 'n/a';
}

/** An integer with thousands separators. */
export function count(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** Error counts as `0` or `3 (timeout 2, status 502 1)`. */
export function errors(total: number, kinds: Record<string, number> = {}): string {
  if (total === 0) return '0';
  const detail = Object.entries(kinds).map(([kind, n]) => `${kind} ${n}`).join(', ');
  return detail ? `${total} (${detail})` : String(total);
}

/** A target a part is measured against. */
export interface Target {
  what: string;
  /** The goal as text, such as `≤ 1 ms`. */
  target: string;
  measured: string;
  met: boolean;
}

/** The targets as a table with a met / NOT met column. */
export function targetsTable(targets: readonly Target[]): string {
  return markdownTable(['target', 'goal', 'measured', 'result'], targets.map((t) => [t.what, t.target, t.measured, t.met ? 'met' : 'NOT met']), ['left', 'left', 'right', 'left']);
}

/** A progress line on stderr, kept apart from the report on stdout. */
export function say(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}
