/**
 * Output formats for `trellis get`: `table` (aligned columns, for people), `json` (the API's
 * objects as they are) and `yaml` (documents separated by `---`, which `trellis apply -f`
 * takes back: the `metadata.revision` they carry makes that apply conditional).
 */
import { stringify } from 'yaml';
import { UsageError, type OptionValues } from './command.js';
import { optionalString } from './args.js';

export type OutputFormat = 'table' | 'json' | 'yaml';

export function outputFormat(values: OptionValues): OutputFormat {
  const v = optionalString(values, 'output') ?? 'table';
  if (v !== 'table' && v !== 'json' && v !== 'yaml') throw new UsageError(`-o/--output must be table, json or yaml, not "${v.slice(0, 20)}"`);
  return v;
}

/** Aligned columns with a header row; empty cells show as `-`. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (c === '' ? '-' : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return `${cells.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('   ')).join('\n')}\n`;
}

/** One or several objects as YAML documents. */
export function yamlDocuments(items: readonly unknown[]): string {
  return items.map((i) => stringify(i, { lineWidth: 0 })).join('---\n');
}

export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
