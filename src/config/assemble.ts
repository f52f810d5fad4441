/**
 * Parsed sources → one validated, normalized `MeshConfig`, or one `ConfigInvalidError` listing
 * every problem found (with file, document, field path and line). Sits between the readers
 * (`load.ts`, `yaml-source.ts`) and normalization (`normalize.ts`).
 *
 * Order of checks per document: generic limits (a document that breaks one is not looked at
 * further), then the schema and the Service structure checks (both always, so one pass shows
 * everything), then checks across documents: one Mesh at most, unique Service names, and a Redis
 * for `scope: global` rate limits.
 */

import { ConfigInvalidError, type ConfigIssue } from '../core/errors.js';
import { formatPath, describeValue, type PathMessage } from './issues.js';
import { checkValueLimits, LIMITS, type PathSegment } from './limits.js';
import { normalizeMesh, normalizeService } from './normalize.js';
import { isRecord, knownKind, validateDocument, type DocumentResult } from './schema.js';
import type { DocumentCache } from './document-cache.js';
import type { RawMeshSpec } from './schema-mesh.js';
import type { RawServiceSpec } from './schema-service.js';
import { checkServiceSpec } from './service-checks.js';
import type { MeshConfig, ServiceSpec } from './types.js';
import type { ParsedSource, SourceDocument } from './yaml-source.js';

interface Placed {
  doc: SourceDocument;
  source: number;
}

function toIssue(doc: SourceDocument, p: PathMessage): ConfigIssue {
  return { file: doc.file, document: doc.index, path: formatPath(p.path), message: p.message, line: doc.lineOf(p.path) };
}

function where(doc: SourceDocument): string {
  return `${doc.file} document ${doc.index}`;
}

/** Paths of every rate limit with `scope: global` in a Service spec. */
function globalRateLimits(spec: RawServiceSpec): PathSegment[][] {
  const paths: PathSegment[][] = [];
  if (spec.rateLimit?.scope === 'global') paths.push(['spec', 'rateLimit', 'scope']);
  if (spec.inbound?.rateLimit?.scope === 'global') paths.push(['spec', 'inbound', 'rateLimit', 'scope']);
  spec.routes?.forEach((r, i) => {
    if (r.rateLimit?.scope === 'global') paths.push(['spec', 'routes', i, 'rateLimit', 'scope']);
  });
  return paths;
}

function capped(issues: ConfigIssue[]): ConfigIssue[] {
  if (issues.length <= LIMITS.maxIssues) return issues;
  const kept = issues.slice(0, LIMITS.maxIssues);
  const next = issues[LIMITS.maxIssues] as ConfigIssue;
  kept.push({ file: next.file, document: next.document, path: '', message: `... and ${issues.length - LIMITS.maxIssues} more problems` });
  return kept;
}

/**
 * @param cache the documents of the last load that passed (document-cache.ts): a document found
 *   there skips the per-document schema, checks and normalization. The cache then holds this
 *   load's documents when it passes, and is left as it was when it fails.
 */
export function assembleConfig(sources: readonly ParsedSource[], cache?: DocumentCache): MeshConfig {
  cache?.begin();
  try {
    const config = assemble(sources, cache);
    cache?.commit();
    return config;
  } finally {
    cache?.abandon();
  }
}

function assemble(sources: readonly ParsedSource[], cache: DocumentCache | undefined): MeshConfig {
  const issues: (ConfigIssue & { source: number })[] = [];
  const add = (source: number, issue: ConfigIssue): void => {
    issues.push({ ...issue, source });
  };
  sources.forEach((s, i) => s.issues.forEach((issue) => add(i, issue)));

  let mesh: { name: string; spec: RawMeshSpec } | undefined;
  let meshInvalid = false;
  let firstMesh: Placed | undefined;
  const firstService = new Map<string, Placed>();
  const services: { name: string; spec: RawServiceSpec; placed: Placed; normalized: ServiceSpec | undefined; key: string | undefined }[] = [];

  sources.forEach((source, sourceIndex) => {
    for (const doc of source.documents) {
      const placed = { doc, source: sourceIndex };
      const report = (p: PathMessage): void => add(sourceIndex, toIssue(doc, p));
      const shape = { jsonExact: true };
      if (!checkValueLimits(doc.value, (path, message) => report({ path: [...path], message }), shape)) continue;

      const kind = knownKind(doc.value);
      // Its JSON text names a document exactly when JSON.stringify writes every value as it is.
      const key = cache !== undefined && kind === 'Service' && shape.jsonExact ? JSON.stringify(doc.value) : undefined;
      const hit = key === undefined ? undefined : cache?.get(key);
      let result: DocumentResult;
      if (hit !== undefined) {
        // The same document passed the last load: schema and Service checks would say the same.
        result = { ok: true, document: { kind: 'Service', name: hit.name, spec: hit.raw } };
      } else {
        result = validateDocument(doc.value);
        if (!result.ok) result.issues.forEach(report);
      }
      const raw = isRecord(doc.value) ? doc.value : {};
      const serviceIssues = kind === 'Service' && hit === undefined ? checkServiceSpec(raw['spec']) : [];
      serviceIssues.forEach(report);

      if (kind === 'Mesh') {
        if (firstMesh !== undefined) {
          report({ path: ['kind'], message: `more than one Mesh document (the first is ${where(firstMesh.doc)})` });
        } else {
          firstMesh = placed;
          meshInvalid = !result.ok;
        }
      }
      const metadata = raw['metadata'];
      const name = isRecord(metadata) ? metadata['name'] : undefined;
      if (kind === 'Service' && typeof name === 'string') {
        const first = firstService.get(name);
        if (first !== undefined) {
          report({ path: ['metadata', 'name'], message: `duplicate Service ${describeValue(name)} (first defined in ${where(first.doc)})` });
        } else {
          firstService.set(name, placed);
        }
      }
      if (!result.ok) continue;
      const valid = result.document;
      if (valid.kind === 'Mesh' && firstMesh === placed) mesh = { name: valid.name, spec: valid.spec };
      if (valid.kind === 'Service' && firstService.get(valid.name) === placed) {
        services.push({ name: valid.name, spec: valid.spec, placed, normalized: hit?.spec, key: serviceIssues.length === 0 ? key : undefined });
      }
    }
  });

  // A global limit shares its counters through Redis; with none configured it could not work.
  // (When the Mesh document itself is invalid, its own errors say enough.)
  if (!meshInvalid && mesh?.spec.redis === undefined) {
    for (const s of services) {
      for (const path of globalRateLimits(s.spec)) {
        add(s.placed.source, toIssue(s.placed.doc, { path, message: 'scope: global needs a Redis: set spec.redis.url in the Mesh document' }));
      }
    }
  }

  if (issues.length > 0) {
    // By source, document, then line (stable: issues on one line keep the order found).
    const sorted = [...issues].sort((a, b) => a.source - b.source || a.document - b.document || (a.line ?? 0) - (b.line ?? 0));
    throw new ConfigInvalidError(capped(sorted.map(({ source: _source, ...issue }) => issue)));
  }

  const serviceMap = new Map<string, ServiceSpec>();
  for (const s of services) {
    const spec = s.normalized ?? normalizeService(s.name, s.spec);
    serviceMap.set(s.name, spec);
    if (s.key !== undefined) cache?.keep(s.key, { name: s.name, raw: s.spec, spec });
  }
  return {
    mesh: normalizeMesh(mesh),
    services: serviceMap,
    sources: [...new Set(sources.map((s) => s.file))],
  };
}
