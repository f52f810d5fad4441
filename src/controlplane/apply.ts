/**
 * Apply: a request's documents, validated whole, then written whole or not at all.
 *
 * Validation is the instances' own config code (src/config: the YAML reader with its limits,
 * the schema, the cross-document checks), run over the merged set — the request's documents
 * plus every stored document they do not replace — so a check that spans documents (one Mesh,
 * a global rate limit needing the Mesh's Redis) judges what the store will hold. Issues name the
 * file (`<request>`, or `<stored Kind/name>` for a stored document the change makes invalid),
 * the document index in the request and the field path. A Mesh must keep the CA's trust domain.
 *
 * Concurrency, without locks: the write is one store transaction whose puts are conditional on
 * each resource's revision as read, plus a put of `CONFIG_EPOCH_KEY` conditional on its revision
 * as read before the list. Any config write in between fails the transaction, and the apply is
 * validated again from a fresh read (a few times), so what is stored was always validated as a
 * whole. A document's `metadata.revision` makes the apply conditional: refused with 409
 * (TRELLIS_CONFLICT) unless the stored revision is that number (0: must not exist).
 */
import { isDeepStrictEqual } from 'node:util';
import { ConfigInvalidError, ConflictError, type ConfigIssue } from '../core/errors.js';
import { assembleConfig } from '../config/assemble.js';
import { isRecord, knownKind } from '../config/schema.js';
import { loadBudget, objectSource, yamlSource, type DocumentBudget, type ParsedSource } from '../config/yaml-source.js';
import type { EffectiveConfigLimits } from '../config/config-limits.js';
import { KEYS, StoreConflictError, type Store, type StoreEntry, type StoreOp, type StoredResource } from './store/store.js';

/** Every config write (apply, delete) bumps this key, conditionally: the fence that serialises them. */
export const CONFIG_EPOCH_KEY = '/trellis/config-epoch';
/** Name given to the request's documents in issues. */
export const REQUEST_FILE = '<request>';
const ATTEMPTS = 10;

export type ApplyAction = 'created' | 'updated' | 'unchanged';

export interface ApplyResult {
  readonly dryRun: boolean;
  /** The store revision the apply wrote at (or read at, for a dry run or when nothing changed). */
  readonly revision: number;
  readonly resources: readonly { readonly kind: 'Mesh' | 'Service'; readonly name: string; readonly revision: number; readonly action: ApplyAction }[];
}

export type RequestBody = { readonly kind: 'yaml'; readonly text: string } | { readonly kind: 'json'; readonly value: unknown };

interface RequestDocument {
  readonly index: number;
  readonly kind: 'Mesh' | 'Service';
  readonly name: string;
  readonly value: StoredResource;
  readonly expectRevision: number | undefined;
}

/** Parses the request into a source (issues included) and notes each document's `metadata.revision`, taken out of it. */
function requestSource(body: RequestBody, budget: DocumentBudget): { source: ParsedSource; expected: Map<number, number> } {
  let source: ParsedSource;
  if (body.kind === 'yaml') source = yamlSource(body.text, REQUEST_FILE, budget);
  else source = objectSource(Array.isArray(body.value) ? body.value : [body.value], REQUEST_FILE, budget);
  const expected = new Map<number, number>();
  for (const doc of source.documents) {
    if (!isRecord(doc.value) || !isRecord(doc.value['metadata']) || !('revision' in doc.value['metadata'])) continue;
    const { revision, ...metadata } = doc.value['metadata'];
    if (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0) {
      source.issues.push({ file: REQUEST_FILE, document: doc.index, path: 'metadata.revision', message: `must be a whole number >= 0 (the stored revision this apply expects; 0: must not exist), got ${JSON.stringify(revision)?.slice(0, 40)}`, line: doc.lineOf(['metadata', 'revision']) });
    } else expected.set(doc.index, revision);
    doc.value = { ...doc.value, metadata };
  }
  return { source, expected };
}

function nameOf(value: unknown): string | undefined {
  const m = isRecord(value) ? value['metadata'] : undefined;
  const n = isRecord(m) ? m['name'] : undefined;
  return typeof n === 'string' ? n : undefined;
}

function storedKey(kind: string, name: string): string {
  return KEYS.resource(kind, name);
}

/** Validates the request against the store as read, returning the request's documents (valid) or throwing ConfigInvalidError. */
function validate(body: RequestBody, stored: readonly StoreEntry<StoredResource>[], trustDomain: string, limits: EffectiveConfigLimits | undefined): RequestDocument[] {
  const budget = loadBudget(limits);
  const { source, expected } = requestSource(body, budget);
  const replaced = new Set<string>();
  for (const doc of source.documents) {
    const kind = knownKind(doc.value);
    const name = nameOf(doc.value);
    if (kind !== undefined && name !== undefined) replaced.add(storedKey(kind, name));
  }
  if (source.documents.length === 0 && source.issues.length === 0) {
    throw new ConfigInvalidError([{ file: REQUEST_FILE, document: 0, path: '', message: 'no documents to apply' }]);
  }
  // A stored Mesh under another name than the request's is replaced too: there is one Mesh.
  const requestHasMesh = source.documents.some((d) => knownKind(d.value) === 'Mesh');
  const others = stored.filter((e) => !replaced.has(e.key) && !(requestHasMesh && e.value.kind === 'Mesh'));
  const sources = [source, ...others.map((e) => objectSource([e.value], `<stored ${e.value.kind}/${e.value.metadata.name}>`, budget))];
  const config = assembleConfig(sources); // throws ConfigInvalidError naming file, document and path
  const issues: ConfigIssue[] = [];
  const out: RequestDocument[] = [];
  for (const doc of source.documents) {
    const kind = knownKind(doc.value) as 'Mesh' | 'Service';
    const name = nameOf(doc.value) as string;
    if (kind === 'Mesh' && config.mesh.trustDomain !== trustDomain) {
      issues.push({ file: REQUEST_FILE, document: doc.index, path: 'spec.trustDomain', message: `must be ${trustDomain}, the trust domain of this control plane's CA (got ${config.mesh.trustDomain}); every certificate it issues names it`, line: doc.lineOf(['spec', 'trustDomain']) });
    }
    out.push({ index: doc.index, kind, name, value: doc.value as StoredResource, expectRevision: expected.get(doc.index) });
  }
  if (issues.length > 0) throw new ConfigInvalidError(issues);
  return out;
}

/**
 * Applies `body` (see the file comment).
 *
 * @throws ConfigInvalidError (400) with every issue; ConflictError (409); StoreUnavailableError (503).
 */
export async function applyDocuments(store: Store, body: RequestBody, options: { dryRun: boolean; trustDomain: string; limits?: EffectiveConfigLimits | undefined }): Promise<ApplyResult> {
  for (let attempt = 1; ; attempt++) {
    const epoch = await store.get(CONFIG_EPOCH_KEY);
    const { entries, revision: readAt } = await store.list<StoredResource>(KEYS.resources);
    const docs = validate(body, entries, options.trustDomain, options.limits);
    const byKey = new Map(entries.map((e) => [e.key, e]));
    const ops: StoreOp[] = [];
    const planned: { kind: 'Mesh' | 'Service'; name: string; action: ApplyAction; current: number }[] = [];
    const seen = new Set<string>();
    for (const d of docs) {
      const key = storedKey(d.kind, d.name);
      const current = byKey.get(key);
      const actual = current?.modRevision ?? 0;
      if (d.expectRevision !== undefined && d.expectRevision !== actual) {
        throw new ConflictError(`${d.kind} ${d.name} is at revision ${actual}, not ${d.expectRevision} as document ${d.index} of the request expects (metadata.revision); nothing was applied`);
      }
      seen.add(key);
      const action: ApplyAction = current === undefined ? 'created' : isDeepStrictEqual(current.value, d.value) ? 'unchanged' : 'updated';
      planned.push({ kind: d.kind, name: d.name, action, current: actual });
      if (action !== 'unchanged') ops.push({ type: 'put', key, value: d.value, ifModRevision: actual });
    }
    // The one Mesh: a request Mesh under a new name replaces the stored one.
    if (docs.some((d) => d.kind === 'Mesh')) {
      for (const e of entries) if (e.value.kind === 'Mesh' && !seen.has(e.key)) ops.push({ type: 'delete', key: e.key, ifModRevision: e.modRevision });
    }
    if (options.dryRun || ops.length === 0) {
      return { dryRun: options.dryRun, revision: readAt, resources: planned.map((p) => ({ kind: p.kind, name: p.name, revision: p.action === 'created' ? 0 : p.current, action: p.action })) };
    }
    ops.push({ type: 'put', key: CONFIG_EPOCH_KEY, value: { readAt }, ifModRevision: epoch?.modRevision ?? 0 });
    try {
      const revision = await store.commit(ops);
      return { dryRun: false, revision, resources: planned.map((p) => ({ kind: p.kind, name: p.name, revision: p.action === 'unchanged' ? p.current : revision, action: p.action })) };
    } catch (err) {
      if (!(err instanceof StoreConflictError)) throw err;
      const conditional = docs.find((d) => d.expectRevision !== undefined && storedKey(d.kind, d.name) === err.key);
      if (conditional !== undefined) {
        throw new ConflictError(`${conditional.kind} ${conditional.name} changed while this apply was being written (now at revision ${err.actual}, expected ${conditional.expectRevision}); nothing was applied`);
      }
      if (attempt >= ATTEMPTS) throw new ConflictError(`the configuration kept changing while this apply was validated (${ATTEMPTS} attempts); nothing was applied, try again`);
    }
  }
}

/**
 * Deletes Service `name`, conditional on `revision` when given. Resolves undefined when there
 * is no such Service (the caller answers 404). No cross-document check can fail by removing a
 * Service (an `authorization.from` may name a service without a document), so none runs.
 *
 * @throws ConflictError (409) when `revision` is not the stored one.
 */
export async function deleteService(store: Store, name: string, revision: number | undefined): Promise<{ revision: number } | undefined> {
  for (let attempt = 1; ; attempt++) {
    const epoch = await store.get(CONFIG_EPOCH_KEY);
    const key = storedKey('Service', name);
    const current = await store.get(key);
    if (current === undefined) {
      if (revision !== undefined && revision !== 0) throw new ConflictError(`Service ${name} does not exist (expected revision ${revision})`);
      return undefined;
    }
    if (revision !== undefined && revision !== current.modRevision) throw new ConflictError(`Service ${name} is at revision ${current.modRevision}, not ${revision}; nothing was deleted`);
    try {
      const at = await store.commit([
        { type: 'delete', key, ifModRevision: current.modRevision },
        { type: 'put', key: CONFIG_EPOCH_KEY, value: { deleted: key }, ifModRevision: epoch?.modRevision ?? 0 },
      ]);
      return { revision: at };
    } catch (err) {
      if (!(err instanceof StoreConflictError)) throw err;
      if (revision !== undefined && err.key === key) throw new ConflictError(`Service ${name} changed while it was being deleted; nothing was deleted`);
      if (attempt >= ATTEMPTS) throw new ConflictError(`the configuration kept changing (${ATTEMPTS} attempts); nothing was deleted, try again`);
    }
  }
}
