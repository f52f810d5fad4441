/**
 * The document envelope — `apiVersion: trellis/v1`, `kind: Mesh | Service`, `metadata.name`,
 * `spec` — and the validation of one parsed document against it. Field schemas live in
 * `schema-mesh.ts`, `schema-service.ts`, `schema-route.ts` and `schema-policy.ts`.
 *
 * `apiVersion` and `kind` are checked first and alone: when either is wrong nothing else in the
 * document can be judged, so it yields one issue naming the document instead of a cascade.
 * Every object is strict: an unknown field is an error, with a "did you mean" when one is close.
 */

import { z } from 'zod';
import { describeValue, flattenIssues, zodErrorMap, type PathMessage } from './issues.js';
import { nameSchema } from './schema-common.js';
import { meshSpecSchema, type RawMeshSpec } from './schema-mesh.js';
import { serviceSpecSchema, type RawServiceSpec } from './schema-service.js';

export const API_VERSION = 'trellis/v1';
export const KINDS = ['Mesh', 'Service'] as const;
export type Kind = (typeof KINDS)[number];

const metadataSchema = z.strictObject({ name: nameSchema });

const meshDocumentSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('Mesh'),
  metadata: metadataSchema,
  spec: meshSpecSchema.optional(),
});

const serviceDocumentSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal('Service'),
  metadata: metadataSchema,
  spec: serviceSpecSchema.optional(),
});

export type ValidDocument =
  | { kind: 'Mesh'; name: string; spec: RawMeshSpec }
  | { kind: 'Service'; name: string; spec: RawServiceSpec };

export type DocumentResult = { ok: true; document: ValidDocument } | { ok: false; issues: PathMessage[] };

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The document's `kind`, when it is one Trellis knows. */
export function knownKind(value: unknown): Kind | undefined {
  if (!isRecord(value)) return undefined;
  const kind = value['kind'];
  return kind === 'Mesh' || kind === 'Service' ? kind : undefined;
}

/** Validates one parsed document (a YAML document's data, or an object passed in). */
export function validateDocument(value: unknown): DocumentResult {
  if (!isRecord(value)) {
    return {
      ok: false,
      issues: [{ path: [], message: `a document is a mapping with apiVersion, kind, metadata and spec, got ${describeValue(value)}` }],
    };
  }
  const issues: PathMessage[] = [];
  const apiVersion = value['apiVersion'];
  if (apiVersion !== API_VERSION) {
    issues.push({
      path: ['apiVersion'],
      message: apiVersion === undefined ? `missing apiVersion (expected ${API_VERSION})` : `unknown apiVersion ${describeValue(apiVersion)} (expected ${API_VERSION})`,
    });
  }
  const kind = knownKind(value);
  if (kind === undefined) {
    const given = value['kind'];
    issues.push({
      path: ['kind'],
      message: given === undefined ? `missing kind (expected ${KINDS.join(' or ')})` : `unknown kind ${describeValue(given)} (expected ${KINDS.join(' or ')})`,
    });
  }
  if (issues.length > 0 || kind === undefined) return { ok: false, issues };

  const options = { error: zodErrorMap, reportInput: true };
  if (kind === 'Mesh') {
    const r = meshDocumentSchema.safeParse(value, options);
    if (!r.success) return { ok: false, issues: flattenIssues(r.error.issues) };
    return { ok: true, document: { kind, name: r.data.metadata.name, spec: r.data.spec ?? {} } };
  }
  const r = serviceDocumentSchema.safeParse(value, options);
  if (!r.success) return { ok: false, issues: flattenIssues(r.error.issues) };
  return { ok: true, document: { kind, name: r.data.metadata.name, spec: r.data.spec ?? {} } };
}
