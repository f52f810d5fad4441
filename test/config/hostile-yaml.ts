/**
 * Hostile YAML shapes just under the 4 MiB text limit, shared by the config-limit tests (which
 * run each in a child process with a small heap) and bench/config-limits.ts (which measures
 * what each costs to refuse). Each shape is one Service document (or a stream of documents)
 * whose size drives the work of a different parser or validator step.
 * Not a test file itself (no `.test.ts`).
 */

/** Bytes each shape aims for: just under the 4 MiB text limit. */
export const TARGET_BYTES = 4 * 1024 * 1024 - 1024;

const HEAD = 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: a }\nspec:\n';

/** Repeats `unit(i)` until the text would pass TARGET_BYTES. */
function fill(prefix: string, unit: (i: number) => string, suffix: string): string {
  const parts: string[] = [prefix];
  let size = prefix.length + suffix.length;
  for (let i = 0; ; i++) {
    const u = unit(i);
    if (size + u.length > TARGET_BYTES) break;
    parts.push(u);
    size += u.length;
  }
  parts.push(suffix);
  return parts.join('');
}

const LONG = 'x'.repeat(8000);

/** Name → YAML text. The texts are built lazily: each is ~4 MiB. */
export const HOSTILE_SHAPES: Readonly<Record<string, () => string>> = {
  /** Empty documents: the stream is mostly `---` lines. */
  'many-documents': () => fill('', () => '---\n', ''),
  /** One flow sequence of ~2 million one-digit items. */
  'flow-sequence': () => fill(`${HEAD}  x: [`, () => '1,', '1]\n'),
  /** One block sequence of ~700 000 items. */
  'block-sequence': () => fill(`${HEAD}  x:\n`, () => '  - 1\n', ''),
  /** One flow mapping with ~300 000 distinct keys (duplicate-key checks go quadratic). */
  'flow-mapping-keys': () => fill(`${HEAD}  x: {`, (i) => `k${i}: 1,`, 'z: 1}\n'),
  /** One block mapping with ~300 000 distinct keys. */
  'block-mapping-keys': () => fill(`${HEAD}  x:\n`, (i) => `    k${i}: 1\n`, ''),
  /** Many small collections nested 30 deep (under the depth limit), side by side. */
  'deep-collections': () => fill(`${HEAD}  x: [`, () => `${'['.repeat(30)}${']'.repeat(30)},`, '1]\n'),
  /** ~500 distinct 8 000-character keys in one mapping (each under the string limit). */
  'long-keys': () => fill(`${HEAD}  x:\n`, (i) => `    "${i}${LONG}": 1\n`, ''),
  /** One ~4 MiB string. */
  'long-string': () => fill(`${HEAD}  x: "`, () => 'xxxxxxxxxxxxxxxx', '"\n'),
  /** ~80 000 routes, each small. */
  'many-routes': () => fill(`${HEAD}  routes:\n`, (i) => `  - { name: r${i}, match: { pathPrefix: /p${i} } }\n`, ''),
  /** Only comment lines: no node at all, ~2 million tokens. */
  'comment-lines': () => fill(`${HEAD}  x: 1\n`, () => '#\n', ''),
  /** ~1 million aliases to one anchored scalar. */
  'many-aliases': () => fill(`${HEAD}  a: &a 1\n  x: [`, () => '*a,', '*a]\n'),
};
