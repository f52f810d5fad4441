/**
 * Turns zod's validation issues into Trellis config problems: a path inside the document and a
 * message that quotes the offending value (`expected number, got string "abc"`,
 * `unknown field "timout" (did you mean "timeout"?)`). Used by `schema.ts` for every document.
 *
 * Two zod shapes need care. Unions (`endpoints: ["127.0.0.1:80", {address: ...}]`) report a
 * failure per branch; we keep the branch whose type matched the input, so the user sees the real
 * problem rather than "invalid input". Strict objects report unknown keys as one issue; we split
 * them, one per key, so each gets its own path and line.
 */

import { closestName } from '../core/did-you-mean.js';
import type { z } from 'zod';
import type { PathSegment } from './limits.js';

type RawIssue = z.core.$ZodRawIssue;
type Issue = z.core.$ZodIssue;

export interface PathMessage {
  path: PathSegment[];
  message: string;
}

/** `spec.routes[0].match.headers["x.y"]`: dots between names, `[i]` for list items. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** A value as messages show it: strings quoted and cut short, containers named. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') {
    const cut = value.length > 80 ? `${value.slice(0, 77)}...` : value;
    return JSON.stringify(cut);
  }
  if (Array.isArray(value)) return 'a list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'list';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'mapping';
  return typeof value;
}

const EXPECTED_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  never: 'nothing',
};

function expectedName(expected: string): string {
  return EXPECTED_NAMES[expected] ?? expected;
}

function got(value: unknown): string {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return `${typeName(value)} ${describeValue(value)}`;
  }
  return describeValue(value);
}

/** Marks the message of an unknown-keys issue as carrying the known keys, for `flattenIssues`. */
const KNOWN_KEYS = 'known-keys:';

function knownKeysOf(iss: RawIssue): string[] {
  const def: unknown = iss.inst?._zod.def;
  if (typeof def === 'object' && def !== null && 'shape' in def) {
    const shape: unknown = def.shape;
    if (typeof shape === 'object' && shape !== null) return Object.keys(shape);
  }
  return [];
}

/** zod error map: every message names the value it refuses. */
export function zodErrorMap(iss: RawIssue): string | undefined {
  const input = iss.input;
  switch (iss.code) {
    case 'invalid_type': {
      if (input === undefined) return 'required field is missing';
      if (iss.expected === 'int' && typeof input === 'number') return `expected an integer, got ${input}`;
      const hint =
        iss.expected === 'string' && (typeof input === 'number' || typeof input === 'boolean')
          ? ` (quote it: "${String(input)}")`
          : '';
      return `expected ${expectedName(iss.expected)}, got ${got(input)}${hint}`;
    }
    case 'too_small':
      if (iss.origin === 'array') return `needs at least ${String(iss.minimum)} item(s), got ${Array.isArray(input) ? input.length : 0}`;
      if (iss.origin === 'string') return iss.minimum === 1 ? 'must not be empty' : `must be at least ${String(iss.minimum)} characters long`;
      return iss.inclusive === false
        ? `must be greater than ${String(iss.minimum)}, got ${describeValue(input)}`
        : `must be at least ${String(iss.minimum)}, got ${describeValue(input)}`;
    case 'too_big':
      if (iss.origin === 'array') return `allows at most ${String(iss.maximum)} items, got ${Array.isArray(input) ? input.length : '?'}`;
      if (iss.origin === 'string') return `must be at most ${String(iss.maximum)} characters long`;
      return iss.inclusive === false
        ? `must be less than ${String(iss.maximum)}, got ${describeValue(input)}`
        : `must be at most ${String(iss.maximum)}, got ${describeValue(input)}`;
    case 'invalid_value':
      return `invalid value ${describeValue(input)} (expected ${iss.values.map((v) => String(v)).join(' | ')})`;
    case 'unrecognized_keys':
      return KNOWN_KEYS + knownKeysOf(iss).join(',');
    case 'invalid_format':
      return `invalid value ${describeValue(input)}`;
    default:
      return undefined;
  }
}

function unknownFieldMessage(key: string, known: readonly string[]): string {
  const best = closestName(key, known);
  const head = `unknown field ${describeValue(key)}`;
  if (best !== undefined) return `${head} (did you mean "${best}"?)`;
  return known.length > 0 ? `${head} (known fields: ${known.join(', ')})` : head;
}

/** The issues of the union branch whose type fits the input, or undefined when none fits. */
function fittingBranch(branches: readonly Issue[][]): Issue[] | undefined {
  return branches.find((issues) =>
    issues.every((i) => i.path.length > 0 || (i.code !== 'invalid_type' && i.code !== 'invalid_value')),
  );
}

function branchExpectation(issues: readonly Issue[]): string | undefined {
  const root = issues.find((i) => i.path.length === 0);
  if (root?.code === 'invalid_type') return expectedName(root.expected);
  if (root?.code === 'invalid_value') return root.values.map((v) => String(v)).join(' | ');
  return undefined;
}

/** Flattens zod issues (already messaged by `zodErrorMap`) into path + message pairs. */
export function flattenIssues(issues: readonly Issue[], base: readonly PathSegment[] = []): PathMessage[] {
  const out: PathMessage[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path.filter((p): p is PathSegment => typeof p !== 'symbol')];
    if (issue.code === 'unrecognized_keys') {
      const known = issue.message.startsWith(KNOWN_KEYS) ? issue.message.slice(KNOWN_KEYS.length).split(',').filter((k) => k !== '') : [];
      for (const key of issue.keys) out.push({ path: [...path, key], message: unknownFieldMessage(key, known) });
    } else if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const branch = fittingBranch(issue.errors);
      if (branch !== undefined) {
        out.push(...flattenIssues(branch, path));
      } else {
        const expected = [...new Set(issue.errors.map(branchExpectation).filter((e): e is string => e !== undefined))];
        const input = issue.input;
        const what = input === undefined ? 'nothing' : got(input);
        const hint = expected.includes('a string') && (typeof input === 'number' || typeof input === 'boolean') ? ` (quote it: "${String(input)}")` : '';
        out.push({ path, message: input === undefined ? 'required field is missing' : `expected ${expected.join(' or ')}, got ${what}${hint}` });
      }
    } else if ((issue.code === 'invalid_key' || issue.code === 'invalid_element') && issue.issues.length > 0) {
      out.push(...flattenIssues(issue.issues, path));
    } else {
      out.push({ path, message: issue.message });
    }
  }
  return out;
}
