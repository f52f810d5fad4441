/**
 * Hard limits on configuration input, and the walk that enforces the generic ones on any parsed
 * document before schema validation. Config can come from a file someone else wrote or from the
 * control-plane API, so it is treated as hostile (docs/security.md, "DoS through config"): every
 * size that drives work (text, documents, nesting, strings, lists, regexes) has a cap, and
 * validation stops early once a document breaks one.
 *
 * Invariant: the walk is iterative and bounded by `maxNestingDepth`, so cyclic or absurdly deep
 * objects passed in directly cannot blow the stack.
 */

export const LIMITS = {
  /** Largest YAML text accepted, per file (a load may set its own: config-limits.ts). */
  maxTextBytes: 4 * 1024 * 1024,
  /**
   * Most documents across all sources of one load (a load may set its own: config-limits.ts).
   * Was 1,000, which 1,000 Services and their Mesh document overflow. A document costs nothing
   * to count; its work is bounded by the node budget (YAML) or by the input the caller already
   * holds (parsed objects), so the count itself can be generous.
   */
  maxDocuments: 10_000,
  /**
   * Most YAML nodes (scalars, collection starts, entries, aliases, anchors, tags) across all
   * sources of one load, counted on the lexer's tokens before the parser builds anything for
   * them: what a YAML text costs to parse, compose and validate grows with this count, not with
   * its bytes (`[1,1,...]` is 2 bytes a node). A 1000-route Service (240 KB) is about 49 000. A
   * double-quoted scalar counts one more per 16 characters: `yaml` decodes escapes by appending
   * one character at a time, which costs tens of bytes of garbage per character. A load may set
   * its own (config-limits.ts); 1,000 Services with full policies are ~127,000.
   */
  maxYamlNodes: 100_000,
  /** Most lexical tokens of any kind (whitespace, line breaks and comments too) in one load (a 1000-route Service: 124 000). */
  maxYamlTokens: 400_000,
  /** Most routes in one Service. */
  maxRoutesPerService: 1000,
  /** Longest string (keys included), in UTF-16 code units. */
  maxStringLength: 8 * 1024,
  /** `yaml`'s alias-expansion guard (its default; js-yaml docs/safety.md explains the attack). */
  maxAliasCount: 100,
  /** Longest regular expression source. */
  maxRegexLength: 1024,
  /**
   * Largest RE2 program a config regex may compile to, in instructions: matching costs at most
   * this many steps per input character. Envoy's default cap is 100; real route regexes need
   * 10-60 (`/api/v[12]/orders/[a-f0-9-]{36}` is 53).
   */
  maxRegexProgramSize: 200,
  /** Deepest nesting of mappings and lists (a real document needs about 8). */
  maxNestingDepth: 32,
  /** Longest list anywhere. */
  maxListLength: 10_000,
  /** Most keys in one mapping. */
  maxMapEntries: 1000,
  /** Most problems reported by one load; the rest are counted, not listed. */
  maxIssues: 200,
} as const;

export type PathSegment = string | number;

/** Reports a problem at a path inside the current document. */
export type IssueSink = (path: readonly PathSegment[], message: string) => void;

/**
 * Checks the limits that apply to any value: nesting depth, string length (keys too), list
 * length, mapping size, and that only JSON-like data is present (objects passed in directly may
 * hold anything). Returns false when the value broke a limit, so the caller skips validating it.
 * With `shape`, also says whether JSON.stringify writes the value exactly (no undefined, NaN,
 * ±Infinity or -0 anywhere, which it would turn into null, 0 or nothing).
 */
export function checkValueLimits(value: unknown, report: IssueSink, shape?: { jsonExact: boolean }): boolean {
  let failures = 0;
  // Each item links to its parent instead of carrying its path: the path is built only for a
  // failure, so the walk allocates one small object per node, not one array per node.
  interface Item { value: unknown; key: PathSegment; parent: Item | undefined; depth: number }
  const pathOf = (item: Item): PathSegment[] => {
    const path: PathSegment[] = [];
    for (let at: Item | undefined = item; at?.parent !== undefined; at = at.parent) path.push(at.key);
    return path.reverse();
  };
  const fail = (item: Item, message: string): void => {
    failures++;
    report(pathOf(item), message);
  };
  const stack: Item[] = [{ value, key: '', parent: undefined, depth: 0 }];
  // A hostile document could break a limit in every node; twenty examples are enough to act on.
  while (stack.length > 0 && failures < 20) {
    const item = stack.pop();
    if (item === undefined) break;
    const v = item.value;
    if (typeof v === 'string') {
      if (v.length > LIMITS.maxStringLength) {
        fail(item, `string of ${v.length} characters is over the ${LIMITS.maxStringLength}-character limit`);
      }
    } else if (typeof v === 'number' || typeof v === 'boolean' || v === null || v === undefined) {
      // Scalars the schema judges. JSON.stringify would write these as something else (null, 0, or nothing).
      if (shape !== undefined && (v === undefined || (typeof v === 'number' && (!Number.isFinite(v) || Object.is(v, -0))))) shape.jsonExact = false;
    } else if (typeof v !== 'object') {
      fail(item, `unsupported value of type ${typeof v} (config holds strings, numbers, booleans, lists and mappings)`);
    } else if (item.depth >= LIMITS.maxNestingDepth) {
      fail(item, `nesting deeper than ${LIMITS.maxNestingDepth} levels`);
    } else if (Array.isArray(v)) {
      if (v.length > LIMITS.maxListLength) {
        fail(item, `list of ${v.length} items is over the ${LIMITS.maxListLength}-item limit`);
      } else {
        for (let i = v.length - 1; i >= 0; i--) stack.push({ value: v[i], key: i, parent: item, depth: item.depth + 1 });
      }
    } else {
      const proto: unknown = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) {
        fail(item, 'unsupported object (config holds strings, numbers, booleans, lists and mappings)');
        continue;
      }
      const keys = Object.keys(v);
      if (keys.length > LIMITS.maxMapEntries) {
        fail(item, `mapping of ${keys.length} keys is over the ${LIMITS.maxMapEntries}-key limit`);
        continue;
      }
      const record = v as Record<string, unknown>;
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i] as string;
        if (key.length > LIMITS.maxStringLength) {
          fail(item, `key of ${key.length} characters is over the ${LIMITS.maxStringLength}-character limit`);
          continue;
        }
        stack.push({ value: record[key], key, parent: item, depth: item.depth + 1 });
      }
    }
  }
  return failures === 0;
}
