/**
 * Regular expressions from config (`pathRegex`, header and query `regex`) are run by V8's
 * backtracking engine on request data, so a careless or hostile pattern is a denial of service
 * (RELIABILITY.md: "no backtracking regex from config"; Envoy caps RE2 program size for the same
 * reason). Node has no RE2, so this file refuses the pattern shapes that backtrack badly, with a
 * deliberately conservative single-pass scan — it may refuse a safe pattern, never the reverse
 * for the shapes it knows:
 *
 * - longer than `LIMITS.maxRegexLength`, or not valid JavaScript syntax;
 * - a repeated group (`*`, `+`, `{n,}`, `{n,m}` with m > 1) that itself contains a quantifier
 *   or an alternation: `(a+)+`, `(a|aa)*`, `(\w+\s?)*` — the exponential cases;
 * - backreferences (`\1`, `\k<x>`) and lookaround, which RE2 and Envoy do not allow either;
 * - more than 3 unbounded wildcards (`.*`, `.+`, `[^/]*`, `\S+`...) or 10 unbounded quantifiers
 *   in all: each adjacent pair of overlapping wildcards multiplies the work on a failing match
 *   (`.*a.*b.*c` is cubic), and request strings are at most a few KiB.
 *
 * Invariant: config regexes match the whole value (`compileMatcherRegex` anchors them), as Istio
 * and Envoy's `safe_regex` do, so `pathRegex: /users/[0-9]+` does not match `/users/1/delete`.
 */

import { LIMITS } from './limits.js';

interface Frame {
  hasQuantifier: boolean;
  hasAlternation: boolean;
}

const QUANTIFIER_BRACES = /^\{(\d+)(?:(,)(\d*))?\}/;

/** Why a config regex is refused, or undefined when it is accepted. */
export function regexProblem(source: string): string | undefined {
  if (source.length > LIMITS.maxRegexLength) {
    return `is ${source.length} characters long, over the ${LIMITS.maxRegexLength}-character limit`;
  }
  try {
    new RegExp(source);
  } catch (err) {
    return `is not a valid regular expression (${err instanceof Error ? err.message : String(err)})`;
  }
  return backtrackingProblem(source);
}

/** Compiles an accepted config regex, anchored to match the whole value. Throws when refused. */
export function compileMatcherRegex(source: string): RegExp {
  const problem = regexProblem(source);
  if (problem !== undefined) throw new Error(`regex "${source}" ${problem}`);
  return new RegExp(`^(?:${source})$`);
}

const WILDCARD_ESCAPES = new Set(['S', 'W', 'D', 's', 'w', 'd']);

function backtrackingProblem(s: string): string | undefined {
  const frames: Frame[] = [{ hasQuantifier: false, hasAlternation: false }];
  // What the next quantifier would apply to.
  let prev: 'none' | 'atom' | 'wildcard' | 'group' = 'none';
  let closed: Frame | undefined;
  let unbounded = 0;
  let wildcards = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    const top = frames[frames.length - 1] as Frame;
    if (ch === '\\') {
      const next = s[i + 1] ?? '';
      if (/[1-9]/.test(next) || (next === 'k' && s[i + 2] === '<')) {
        return 'uses a backreference, which can take exponential time (not allowed in config)';
      }
      prev = WILDCARD_ESCAPES.has(next) ? 'wildcard' : 'atom';
      i++;
    } else if (ch === '[') {
      const negated = s[i + 1] === '^';
      let j = i + 1;
      while (j < s.length && s[j] !== ']') j += s[j] === '\\' ? 2 : 1;
      i = j;
      prev = negated ? 'wildcard' : 'atom';
    } else if (ch === '(') {
      if (/^\(\?(?:=|!|<=|<!)/.test(s.slice(i, i + 4))) {
        return 'uses lookahead or lookbehind, which config regexes do not allow (RE2 subset)';
      }
      frames.push({ hasQuantifier: false, hasAlternation: false });
      if (s.startsWith('(?:', i)) i += 2;
      else if (s.startsWith('(?<', i)) i = s.indexOf('>', i);
      prev = 'none';
    } else if (ch === ')') {
      closed = frames.pop();
      const parent = frames[frames.length - 1];
      if (closed === undefined || parent === undefined) return 'has an unbalanced ")"';
      parent.hasQuantifier ||= closed.hasQuantifier;
      parent.hasAlternation ||= closed.hasAlternation;
      prev = 'group';
    } else if (ch === '|') {
      top.hasAlternation = true;
      prev = 'none';
    } else if (ch === '*' || ch === '+' || ch === '?' || (ch === '{' && QUANTIFIER_BRACES.test(s.slice(i)))) {
      let repeats = ch !== '?';
      let isUnbounded = ch === '*' || ch === '+';
      if (ch === '{') {
        const m = QUANTIFIER_BRACES.exec(s.slice(i)) as RegExpExecArray;
        const min = Number(m[1]);
        const max = m[2] === undefined ? min : m[3] === '' ? Infinity : Number(m[3]);
        repeats = max > 1;
        isUnbounded = max === Infinity;
        i += m[0].length - 1;
      }
      if (s[i + 1] === '?') i++; // lazy form: same backtracking
      if (prev === 'group' && repeats && closed !== undefined && (closed.hasQuantifier || closed.hasAlternation)) {
        return 'repeats a group that contains a quantifier or an alternation, like (a+)+ or (a|b)*, which can take exponential time';
      }
      if (isUnbounded) {
        unbounded++;
        if (prev === 'wildcard') wildcards++;
      }
      top.hasQuantifier = true;
      prev = 'none';
    } else {
      prev = ch === '.' ? 'wildcard' : 'atom';
    }
  }
  if (wildcards > 3) return `has ${wildcards} unbounded wildcards like .* (at most 3: each one multiplies the matching work)`;
  if (unbounded > 10) return `has ${unbounded} unbounded quantifiers (at most 10)`;
  return undefined;
}
