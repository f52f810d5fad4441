/**
 * Regular expressions from config (`pathRegex`, header and query `regex`) are compiled and run
 * by RE2 — `re2js`, a pure-JavaScript port of RE2/J — never by V8's backtracking engine. RE2
 * matches in time linear in the input (work ≤ program size × input length), which is how
 * Envoy makes `safe_regex` safe; docs/security.md: "no backtracking regex from config".
 *
 * The dialect is therefore RE2's: no backreferences, no lookahead or lookbehind (refused at
 * load, with RE2's message), repeat counts at most 1000. Two bounds keep compiling and matching
 * cheap whatever the pattern:
 *
 * - source length ≤ `LIMITS.maxRegexLength`;
 * - program size ≤ `LIMITS.maxRegexProgramSize` instructions (Envoy caps RE2 program size the
 *   same way, at 100 by default). The cap bounds the work per input character. Because
 *   compiling costs about as much as the program it builds (a 1 KiB pattern like
 *   `\d{0,1000}` ×100 compiles to 200 000 instructions in 3 s and 90 MB), an upper bound on
 *   the size is computed from the source first, and only patterns under it are compiled.
 *
 * Invariant: config regexes match the whole value (`compileMatcherRegex` uses RE2's full
 * match), as Istio and Envoy's `safe_regex` do, so `/users/[0-9]+` does not match `/users/1/x`.
 */

import { RE2JS } from 're2js';
import { LIMITS } from './limits.js';

/** A compiled config regex. `engine` names the (linear-time) engine that runs it. */
export interface ConfigRegex {
  readonly source: string;
  readonly engine: 're2';
  /** RE2 program size, in instructions. */
  readonly programSize: number;
  /** True when the whole value matches. */
  test(value: string): boolean;
}

const REPEAT = /^\{(\d{1,6})(,(\d{0,6}))?\}/;

/**
 * An upper bound on the RE2 program size of `source`, from one pass over the text: every atom
 * costs 1, a repeat `{n,m}` multiplies what it repeats (plus a split) by max(n, m) (n + 1 for
 * `{n,}`), and `*`, `+`, `?`, `|` and groups add 2. It over-counts (a `{2}` inside a class counts as a
 * repeat), never under-counts, so a pattern under the bound is cheap to compile.
 */
export function programSizeBound(source: string): number {
  // Per open group: its size so far. `last` is the size of the unit a quantifier would repeat.
  const sizes: number[] = [0];
  let last = 0;
  const add = (n: number): void => {
    sizes[sizes.length - 1] = (sizes[sizes.length - 1] as number) + n;
  };
  for (let i = 0; i < source.length; i++) {
    const ch = source[i];
    if (ch === '\\') {
      const next = source[i + 1];
      // \x{...}, \p{...}, \P{...}: the braces belong to the escape, not a repeat.
      if ((next === 'x' || next === 'p' || next === 'P') && source[i + 2] === '{') {
        const close = source.indexOf('}', i);
        i = close === -1 ? source.length : close;
      } else {
        i++;
      }
      last = 1;
      add(1);
    } else if (ch === '[') {
      // Ends at the first `]` that is not first in the class: never later than RE2's end, so
      // nothing after the class is skipped (ending early only over-counts).
      let j = i + 1;
      if (source[j] === '^') j++;
      if (source[j] === ']') j++;
      while (j < source.length && source[j] !== ']') j += source[j] === '\\' ? 2 : 1;
      i = j;
      last = 1;
      add(1);
    } else if (ch === '(') {
      sizes.push(2); // capture start and end
      last = 0;
    } else if (ch === ')') {
      const group = sizes.length > 1 ? (sizes.pop() as number) : 1;
      last = group;
      add(group);
    } else if (ch === '*' || ch === '+' || ch === '?' || ch === '|') {
      last = ch === '|' ? 0 : last + 2;
      add(2);
    } else if (ch === '{' && REPEAT.test(source.slice(i, i + 16))) {
      const m = REPEAT.exec(source.slice(i, i + 16)) as RegExpExecArray;
      const min = Number(m[1]);
      const times = m[2] === undefined ? min : m[3] === '' ? min + 1 : Math.max(min, Number(m[3]));
      // Each copy past the first costs the unit again plus a split (RE2 nests optional copies).
      add((last + 2) * (times - 1) + 2);
      last = (last + 2) * times + 2;
      i += m[0].length - 1;
    } else {
      last = 1;
      add(1);
    }
  }
  let total = 0;
  for (const s of sizes) total += s;
  return total + 2;
}

/** RE2's own messages say what is wrong; these say why the feature is missing. */
function hint(source: string): string {
  if (/\\[1-9]|\\k</.test(source)) return ' (backreferences are not supported: RE2 matches in linear time)';
  if (/\(\?<?[=!]/.test(source)) return ' (lookahead and lookbehind are not supported: RE2 matches in linear time)';
  return '';
}

function compile(source: string): ConfigRegex | string {
  if (source.length > LIMITS.maxRegexLength) {
    return `is ${source.length} characters long, over the ${LIMITS.maxRegexLength}-character limit`;
  }
  const max = LIMITS.maxRegexProgramSize;
  const bound = programSizeBound(source);
  // The bound over-counts by up to ~4.4× (measured on 20 000 random patterns); five times the
  // cap still compiles in a few milliseconds, and the exact size below decides.
  if (bound > 5 * max) return `is too large: its RE2 program would exceed ${max} instructions (repeat counts multiply the size)`;
  let re: RE2JS;
  try {
    re = RE2JS.compile(source);
  } catch (err) {
    return `is not a valid RE2 regular expression: ${err instanceof Error ? err.message : String(err)}${hint(source)}`;
  }
  const size = re.programSize();
  if (size > max) return `is too large: its RE2 program has ${size} instructions, over the ${max}-instruction limit`;
  return { source, engine: 're2', programSize: size, test: (value) => re.matches(value) };
}

/** Why a config regex is refused, or undefined when it is accepted. */
export function regexProblem(source: string): string | undefined {
  const result = compile(source);
  return typeof result === 'string' ? result : undefined;
}

/** Compiles an accepted config regex, matching the whole value. Throws when refused. */
export function compileMatcherRegex(source: string): ConfigRegex {
  const result = compile(source);
  if (typeof result === 'string') throw new Error(`regex "${source}" ${result}`);
  return result;
}
