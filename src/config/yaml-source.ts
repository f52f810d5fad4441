/**
 * Text and objects → documents ready for validation, each able to say on which line a field
 * sits. YAML goes through `yaml`'s own pipeline — `Parser` (CST) then `Composer` (documents),
 * which is what `parseAllDocuments` does — with our checks between the steps, because hostile
 * input must be refused before the step it attacks:
 *
 * - size, before parsing (4 MiB);
 * - document count, while the parser streams (it stops at the 1001st document);
 * - nesting depth, on the CST, before composing: `yaml`'s composer recurses per level, and we
 *   have seen a stack overflow there take the whole process down (V8 aborted compiling a regex
 *   on the exhausted stack) rather than throw;
 * - depth after alias expansion (aliases may nest anchors) and alias count (`maxAliasCount`,
 *   the billion-laughs guard), before `toJS`.
 *
 * Invariant: every walk here is iterative and bounded; no recursion on input shape before the
 * depth checks pass.
 */

import {
  Composer,
  type CST,
  type Document,
  isAlias,
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  Parser,
} from 'yaml';
import type { ConfigIssue } from '../core/errors.js';
import { LIMITS, type PathSegment } from './limits.js';

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

/** Documents still allowed in this load; shared by all of its sources. */
export interface DocumentBudget {
  remaining: number;
}

const MIB = 1024 * 1024;

function tooManyDocuments(file: string, index: number): ConfigIssue {
  return { file, document: index, path: '', message: `more than ${LIMITS.maxDocuments} documents in this configuration` };
}

/** Objects passed in directly (already-parsed documents). */
export function objectSource(values: readonly unknown[], file: string, budget: DocumentBudget): ParsedSource {
  if (values.length > budget.remaining) {
    return { file, documents: [], issues: [tooManyDocuments(file, budget.remaining)] };
  }
  budget.remaining -= values.length;
  const documents = values.map((value, index) => ({ file, index, value, lineOf: () => undefined }));
  return { file, documents, issues: [] };
}

/** Deepest nesting of collections in a CST token, and where it first passes `limit`. */
function cstTooDeep(root: CST.Token, limit: number): number | undefined {
  const stack: { token: CST.Token; depth: number }[] = [{ token: root, depth: 0 }];
  while (stack.length > 0) {
    const { token, depth } = stack.pop() as { token: CST.Token; depth: number };
    switch (token.type) {
      case 'document':
        if (token.value !== undefined) stack.push({ token: token.value, depth });
        break;
      case 'block-map':
      case 'block-seq':
      case 'flow-collection':
        if (depth + 1 > limit) return token.offset;
        for (const item of token.items) {
          if (item.key !== undefined && item.key !== null) stack.push({ token: item.key, depth: depth + 1 });
          if (item.value !== undefined) stack.push({ token: item.value, depth: depth + 1 });
        }
        break;
      default:
        break;
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

/** Parses YAML text (one or more `---`-separated documents). */
export function yamlSource(text: string, file: string, budget: DocumentBudget): ParsedSource {
  const issues: ConfigIssue[] = [];
  const out: ParsedSource = { file, documents: [], issues };
  const size = text.length > LIMITS.maxTextBytes ? text.length : Buffer.byteLength(text, 'utf8');
  if (size > LIMITS.maxTextBytes) {
    issues.push({ file, document: 0, path: '', message: `configuration text is ${(size / MIB).toFixed(1)} MiB, over the ${LIMITS.maxTextBytes / MIB} MiB limit` });
    return out;
  }

  const lines = new LineCounter();
  const tokens: CST.Token[] = [];
  let count = 0;
  for (const token of new Parser(lines.addNewLine).parse(text)) {
    if (token.type === 'document') {
      if (count >= budget.remaining) {
        issues.push(tooManyDocuments(file, count));
        return out;
      }
      const deep = cstTooDeep(token, LIMITS.maxNestingDepth);
      if (deep !== undefined) {
        issues.push({ file, document: count, path: '', line: lines.linePos(deep).line, message: `nesting deeper than ${LIMITS.maxNestingDepth} levels` });
      }
      count++;
    }
    tokens.push(token);
  }
  budget.remaining -= count;
  if (issues.length > 0) return out;

  const composer = new Composer({ version: '1.2', uniqueKeys: true, prettyErrors: false });
  const docs = Array.from(composer.compose(tokens));
  for (const error of composer.streamInfo().errors) {
    issues.push({ file, document: 0, path: '', line: lines.linePos(error.pos[0]).line, message: `YAML: ${error.message}`, near: near(text, error.pos[0]) });
  }
  docs.forEach((doc, index) => {
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        issues.push({ file, document: index, path: '', line: lines.linePos(error.pos[0]).line, message: `YAML: ${error.message}`, near: near(text, error.pos[0]) });
      }
      return;
    }
    if (doc.contents === null) return; // an empty document
    const depth = expandedDepth(doc);
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
  });
  return out;
}
