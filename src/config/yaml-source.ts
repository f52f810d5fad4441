/**
 * Text and objects → documents ready for validation, each able to say on which line a field
 * sits. YAML goes through `yaml`'s own pipeline — `Lexer` → `Parser` (CST) → `Composer`
 * (documents), which is what `parseAllDocuments` does — driven one token at a time, with our
 * checks between the steps, because hostile input must be refused before the step it attacks
 * (docs/security.md, "DoS through config"; numbers in docs/configuration.md):
 *
 * - size, before lexing (`maxTextBytes`, 4 MiB unless the load sets it; config-limits.ts);
 * - node and token counts, on each lexical token before the parser sees it: a 4 MiB flow list
 *   of 2 million items, or a mapping of 300 000 keys, costs 1-2 GB and tens of seconds to
 *   compose, so the text stops being read at the budget (`maxYamlNodes`, `maxYamlTokens`, for
 *   the whole load) and at the first scalar far over the string limit;
 * - document count, as the parser yields documents (it stops at the first past `maxDocuments`);
 * - nesting depth, list length and mapping size on each document's CST, before composing it:
 *   `yaml`'s composer recurses per level, and we have seen a stack overflow there take the
 *   whole process down (V8 aborted compiling a regex on the exhausted stack) rather than throw;
 * - duplicate keys, in one pass with a Set after composing (`yaml`'s own `uniqueKeys` check
 *   compares each key with every earlier one: quadratic in a mapping's size);
 * - depth after alias expansion (aliases may nest anchors) and alias count (`maxAliasCount`,
 *   the billion-laughs guard), before `toJS`.
 *
 * Documents are composed as soon as their CST is complete, and the CST is dropped, so memory
 * holds one document's CST plus the composed documents, all bounded by the node budget.
 *
 * Invariant: every walk here is iterative and bounded; no recursion on input shape before the
 * depth checks pass.
 */

import {
  Composer,
  CST,
  type Document,
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  Lexer,
  LineCounter,
  Parser,
} from 'yaml';
import type { ConfigIssue } from '../core/errors.js';
import { LIMITS, type PathSegment } from './limits.js';
import { DEFAULT_CONFIG_LIMITS, type EffectiveConfigLimits } from './config-limits.js';

export interface SourceDocument {
  file: string;
  /** Zero-based position of the document in its file. */
  index: number;
  value: unknown;
  /** 1-based line of the field at `path` (or of its nearest ancestor that exists). */
  lineOf(path: readonly PathSegment[]): number | undefined;
}

export interface ParsedSource {
  file: string;
  documents: SourceDocument[];
  issues: ConfigIssue[];
}

/** Documents, YAML nodes and tokens still allowed in this load; shared by all of its sources. */
export interface DocumentBudget {
  remaining: number;
  nodes: number;
  tokens: number;
  /** The limits of this load (for messages, and the per-text size). */
  readonly limits: EffectiveConfigLimits;
}

/** A fresh budget for one load, under `limits` (resolveConfigLimits; default: the defaults). */
export function loadBudget(limits: EffectiveConfigLimits = DEFAULT_CONFIG_LIMITS): DocumentBudget {
  return { remaining: limits.maxDocuments, nodes: limits.maxYamlNodes, tokens: limits.maxYamlTokens, limits };
}

const MIB = 1024 * 1024;

/** A byte limit as written: `4 MiB`, or bytes when not a whole number of MiB. */
export function formatBytes(n: number): string {
  return n % MIB === 0 ? `${n / MIB} MiB` : `${n} bytes`;
}

function tooManyDocuments(file: string, index: number, budget: DocumentBudget): ConfigIssue {
  return { file, document: index, path: '', message: `more than ${budget.limits.maxDocuments} documents in this configuration (maxDocuments)` };
}

/** Objects passed in directly (already-parsed documents). */
export function objectSource(values: readonly unknown[], file: string, budget: DocumentBudget): ParsedSource {
  if (values.length > budget.remaining) {
    return { file, documents: [], issues: [tooManyDocuments(file, budget.remaining, budget)] };
  }
  budget.remaining -= values.length;
  const documents = values.map((value, index) => ({ file, index, value, lineOf: () => undefined }));
  return { file, documents, issues: [] };
}

/**
 * The first generic limit a document's CST breaks, before it is composed: nesting deeper than
 * `maxNestingDepth`, a list longer than `maxListLength`, a mapping with more than
 * `maxMapEntries` entries. Iterative; the depth check stops the walk from going deeper.
 */
function cstProblem(root: CST.Token): { offset: number; message: string } | undefined {
  const stack: { token: CST.Token; depth: number }[] = [{ token: root, depth: 0 }];
  while (stack.length > 0) {
    const { token, depth } = stack.pop() as { token: CST.Token; depth: number };
    switch (token.type) {
      case 'document':
        if (token.value !== undefined) stack.push({ token: token.value, depth });
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection': {
        if (depth + 1 > LIMITS.maxNestingDepth) return { offset: token.offset, message: `nesting deeper than ${LIMITS.maxNestingDepth} levels` };
        const isList = token.type === 'block-seq' || (token.type === 'flow-collection' && token.start.source === '[');
        const n = token.items.length;
        if (isList && n > LIMITS.maxListLength) {
          return { offset: token.offset, message: `list of more than ${LIMITS.maxListLength} items (maxListLength)` };
        }
        if (!isList && n > LIMITS.maxMapEntries) {
          return { offset: token.offset, message: `mapping of more than ${LIMITS.maxMapEntries} keys (maxMapEntries)` };
        }
        for (const item of token.items) {
          if ('key' in item && item.key !== undefined && item.key !== null) stack.push({ token: item.key, depth: depth + 1 });
          if (item.value !== undefined) stack.push({ token: item.value, depth: depth + 1 });
        }
        break;
      }
      default:
        break;
    }
  }
  return undefined;
}

/** The first duplicate or non-scalar key of any mapping in a composed document (one pass, a Set per mapping). */
function keyProblem(doc: Document.Parsed): { offset: number | undefined; message: string } | undefined {
  const stack: unknown[] = [doc.contents];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isSeq(node)) {
      for (const item of node.items) stack.push(item);
    } else if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key: unknown = pair.key;
        if (!isScalar(key)) {
          return { offset: isNode(key) ? key.range?.[0] : undefined, message: 'YAML: a mapping key is a collection or alias (config keys are strings)' };
        }
        const name = String(key.value);
        if (seen.has(name)) return { offset: key.range?.[0], message: `YAML: duplicate key ${JSON.stringify(name.length > 40 ? `${name.slice(0, 37)}...` : name)} (map keys must be unique)` };
        seen.add(name);
        stack.push(pair.value);
      }
    }
  }
  return undefined;
}

/**
 * Nesting depth of a composed document's data once aliases are expanded, computed once per node
 * (aliases make a DAG); Infinity when an alias refers to an enclosing node (a cycle).
 */
function expandedDepth(doc: Document.Parsed): number {
  const memo = new Map<object, number>();
  const open = new Set<object>();
  const children = (node: unknown): unknown[] => {
    if (isAlias(node)) {
      const target = node.resolve(doc);
      return target === undefined ? [] : [target];
    }
    if (isMap(node) || isSeq(node)) return node.items;
    if (isPair(node)) return [node.key, node.value];
    return [];
  };
  const ownDepth = (node: unknown): number => (isMap(node) || isSeq(node) ? 1 : 0);
  const stack: { node: object; expanded: boolean }[] = [];
  if (doc.contents !== null) stack.push({ node: doc.contents, expanded: false });
  while (stack.length > 0) {
    const top = stack[stack.length - 1] as { node: object; expanded: boolean };
    if (memo.has(top.node)) {
      stack.pop();
      continue;
    }
    const kids = children(top.node).filter((k): k is object => typeof k === 'object' && k !== null);
    if (!top.expanded) {
      top.expanded = true;
      open.add(top.node);
      for (const kid of kids) {
        if (open.has(kid)) return Infinity;
        if (!memo.has(kid)) stack.push({ node: kid, expanded: false });
      }
      continue;
    }
    stack.pop();
    open.delete(top.node);
    let deepest = 0;
    for (const kid of kids) deepest = Math.max(deepest, memo.get(kid) ?? 0);
    memo.set(top.node, ownDepth(top.node) + deepest);
  }
  return doc.contents === null ? 0 : (memo.get(doc.contents) ?? 0);
}

/** Finds the line of `path` in a composed document: the key's line for mapping entries. */
function locate(doc: Document.Parsed, path: readonly PathSegment[], lines: LineCounter): number | undefined {
  let node: unknown = doc.contents;
  let offset = isNode(node) ? node.range?.[0] : undefined;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      offset = (isNode(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item: unknown = node.items[seg];
      if (!isNode(item)) break;
      offset = item.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : lines.linePos(offset).line;
}

/** The source line at `offset`, trimmed and capped, so a syntax error shows what it is about. */
function near(text: string, offset: number): string | undefined {
  const start = text.lastIndexOf('\n', Math.max(0, offset - 1)) + 1;
  const end = text.indexOf('\n', offset);
  const line = text.slice(start, end === -1 ? undefined : end).trim();
  return line === '' ? undefined : line.length > 80 ? `${line.slice(0, 77)}...` : line;
}

/** Lexical token types that become a node or an entry in the CST and the composed document. */
const NODE_TOKENS = new Set<string>([
  'scalar', 'single-quoted-scalar', 'double-quoted-scalar', 'alias', 'anchor', 'tag', 'flow-map-start', 'flow-seq-start',
  'seq-item-ind', 'map-value-ind', 'explicit-key-ind', 'comma',
]);

/**
 * Longest scalar source read before refusing outright. Escapes and folding make a scalar's
 * source longer than its value, so this is a multiple of the string limit; the exact check on
 * the value is `checkValueLimits`'.
 */
const MAX_SCALAR_SOURCE = 8 * LIMITS.maxStringLength;

/** Parses YAML text (one or more `---`-separated documents). */
export function yamlSource(text: string, file: string, budget: DocumentBudget): ParsedSource {
  const issues: ConfigIssue[] = [];
  const out: ParsedSource = { file, documents: [], issues };
  const maxBytes = budget.limits.maxTextBytes;
  const size = text.length > maxBytes ? text.length : Buffer.byteLength(text, 'utf8');
  if (size > maxBytes) {
    issues.push({ file, document: 0, path: '', message: `configuration text is ${size} bytes${size >= MIB ? ` (${(size / MIB).toFixed(1)} MiB)` : ''}, over the ${formatBytes(maxBytes)} limit (maxTextBytes)` });
    return out;
  }

  const lines = new LineCounter();
  const parser = new Parser(lines.addNewLine);
  lines.addNewLine(0); // what Parser.parse() does before the first token
  const composer = new Composer({ version: '1.2', uniqueKeys: false, prettyErrors: false });
  let count = 0; // documents seen by the parser
  let composed = 0; // documents yielded by the composer
  let stopped = false;
  const stop = (offset: number, message: string, document = count): void => {
    issues.push({ file, document, path: '', line: lines.linePos(offset).line, message });
    stopped = true;
  };

  // An alias is written `*name`: a text without '*' has none, and its nesting was already
  // bounded token by token (cstProblem), so the alias-aware depth walk is skipped (71 ms instead
  // of 78 ms for a Service of 1,000 routes, quiet machine).
  const mayHaveAliases = text.includes('*');
  const onDocument = (doc: Document.Parsed): void => {
    const index = composed++;
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        issues.push({ file, document: index, path: '', line: lines.linePos(error.pos[0]).line, message: `YAML: ${error.message}`, near: near(text, error.pos[0]) });
      }
      return;
    }
    if (doc.contents === null) return; // an empty document
    const keys = keyProblem(doc);
    if (keys !== undefined) {
      issues.push({ file, document: index, path: '', line: keys.offset === undefined ? undefined : lines.linePos(keys.offset).line, message: keys.message });
      return;
    }
    const depth = mayHaveAliases ? expandedDepth(doc) : 0;
    if (depth > LIMITS.maxNestingDepth) {
      const what = depth === Infinity ? 'an alias refers to a node that contains it' : `aliases expand to nesting deeper than ${LIMITS.maxNestingDepth} levels`;
      issues.push({ file, document: index, path: '', message: what });
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: LIMITS.maxAliasCount });
    } catch (err) {
      const bomb = err instanceof ReferenceError && /alias/i.test(err.message);
      issues.push({
        file,
        document: index,
        path: '',
        message: bomb
          ? `YAML aliases expand too much (over maxAliasCount ${LIMITS.maxAliasCount}; an alias bomb?)`
          : `YAML: ${err instanceof Error ? err.message : String(err)}`,
      });
      return;
    }
    // An empty document (a trailing `---`, or only comments) composes to null: nothing to check.
    if (value === null || value === undefined) return;
    out.documents.push({ file, index, value, lineOf: (path) => locate(doc, path, lines) });
  };

  const onToken = (token: CST.Token): void => {
    if (token.type === 'document') {
      if (count >= budget.remaining) {
        issues.push(tooManyDocuments(file, count, budget));
        stopped = true;
        return;
      }
      const problem = cstProblem(token);
      if (problem !== undefined) {
        stop(problem.offset, problem.message);
        return;
      }
      count++;
    }
    for (const doc of composer.next(token)) onDocument(doc);
  };

  // Offsets as the parser counts them (control lexemes take no room in the text).
  let offset = 0;
  let atScalar = false;
  for (const lexeme of new Lexer().lex(text)) {
    if (--budget.tokens < 0) {
      stop(offset, `more than ${budget.limits.maxYamlTokens} YAML tokens in this configuration (maxYamlTokens)`);
      break;
    }
    if (atScalar) {
      atScalar = false;
      if (lexeme.length > MAX_SCALAR_SOURCE) {
        stop(offset, `a scalar of ${lexeme.length} characters, far over the ${LIMITS.maxStringLength}-character string limit`);
        break;
      }
    } else {
      const type = CST.tokenType(lexeme);
      if (type === 'scalar') atScalar = true;
      if ((type === 'single-quoted-scalar' || type === 'double-quoted-scalar') && lexeme.length > MAX_SCALAR_SOURCE) {
        stop(offset, `a scalar of ${lexeme.length} characters, far over the ${LIMITS.maxStringLength}-character string limit`);
        break;
      }
      if (type !== null && NODE_TOKENS.has(type)) budget.nodes -= type === 'double-quoted-scalar' ? 1 + (lexeme.length >> 4) : 1;
      if (budget.nodes < 0) {
        stop(offset, `more than ${budget.limits.maxYamlNodes} YAML nodes (scalars, collections, entries, aliases) in this configuration (maxYamlNodes)`);
        break;
      }
    }
    for (const token of parser.next(lexeme)) {
      onToken(token);
      if (stopped) break;
    }
    if (stopped) break;
    if (lexeme !== '\x02' && lexeme !== '\x18' && lexeme !== '\x1f') offset += lexeme.length;
  }
  if (!stopped) {
    for (const token of parser.end()) {
      onToken(token);
      if (stopped) break;
    }
  }
  budget.remaining -= count;
  if (stopped) return { file, documents: [], issues };
  for (const doc of composer.end()) onDocument(doc);
  for (const error of composer.streamInfo().errors) {
    issues.push({ file, document: 0, path: '', line: lines.linePos(error.pos[0]).line, message: `YAML: ${error.message}`, near: near(text, error.pos[0]) });
  }
  return out;
}
