/**
 * Routes for the Mesh and Service documents: apply (YAML or JSON, dry run), get, list,
 * delete. Documents are answered in the shape they were applied, with `metadata.revision` added
 * (apply accepts it back, as a condition: a `get -o yaml | edit | apply` round trip cannot
 * overwrite someone else's change).
 */
import { DEFAULT_CONFIG_LIMITS, type EffectiveConfigLimits } from '../config/config-limits.js';
import { ConfigInvalidError, isTrellisError, NotFoundError } from '../core/errors.js';
import { LIMITS } from '../config/limits.js';
import { isServiceName } from '../tls/spiffe.js';
import { ApiError } from './api-error.js';
import { applyDocuments, deleteService, REQUEST_FILE, type RequestBody } from './apply.js';
import type { ControlPlaneMetrics } from './metrics.js';
import type { ApiRequest, Router } from './router.js';
import { KEYS, type Store, type StoreEntry, type StoredResource } from './store/store.js';

export interface ResourcesApiDeps {
  readonly store: Store;
  readonly trustDomain: string;
  readonly metrics: ControlPlaneMetrics;
  /** The loader limits applies are held to (default: the defaults). */
  readonly limits?: EffectiveConfigLimits | undefined;
}

/** A stored document as the API shows it: with its revision. */
export function withRevision(e: StoreEntry<StoredResource>): StoredResource {
  return { ...e.value, metadata: { ...e.value.metadata, revision: e.modRevision } };
}

function flag(req: ApiRequest, name: string): boolean {
  const v = req.query.get(name);
  if (v === null || v === 'false' || v === '0') return false;
  if (v === '' || v === 'true' || v === '1') return true;
  throw new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', `query parameter ${name} must be true or false, got "${v.slice(0, 20)}"`);
}

function revisionParam(req: ApiRequest): number | undefined {
  const v = req.query.get('revision');
  if (v === null) return undefined;
  if (!/^\d{1,15}$/.test(v)) throw new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', `query parameter revision must be a whole number, got "${v.slice(0, 20)}"`);
  return Number(v);
}

function serviceName(req: ApiRequest): string {
  const name = req.params['name'] ?? '';
  if (!isServiceName(name)) throw new ApiError(400, 'TRELLIS_INVALID_ARGUMENT', `"${name.slice(0, 64)}" is not a service name (a DNS label)`);
  return name;
}

async function readRequestBody(req: ApiRequest, maxBytes: number): Promise<RequestBody> {
  const type = (req.headers['content-type'] ?? 'application/yaml').split(';')[0]?.trim().toLowerCase() ?? '';
  const json = type === 'application/json';
  if (!json && !['application/yaml', 'application/x-yaml', 'text/yaml', 'text/plain'].includes(type)) {
    throw new ApiError(415, 'TRELLIS_INVALID_ARGUMENT', `Content-Type ${type.slice(0, 64)} is not accepted; send application/yaml or application/json`);
  }
  const bytes = await req.body(maxBytes);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new ConfigInvalidError([{ file: REQUEST_FILE, document: 0, path: '', message: 'the body is not valid UTF-8' }]);
  }
  if (!json) return { kind: 'yaml', text };
  const depth = jsonNesting(text);
  if (depth > LIMITS.maxNestingDepth + 1) {
    throw new ConfigInvalidError([{ file: REQUEST_FILE, document: 0, path: '', message: `JSON nested deeper than ${LIMITS.maxNestingDepth} levels` }]);
  }
  try {
    return { kind: 'json', value: JSON.parse(text) as unknown };
  } catch (err) {
    throw new ConfigInvalidError([{ file: REQUEST_FILE, document: 0, path: '', message: `JSON: ${(err as Error).message}` }]);
  }
}

/**
 * The deepest nesting of `[` and `{` in JSON text, outside strings: one linear pass, run before
 * JSON.parse, which would otherwise build millions of nested arrays (seconds of CPU for 4 MiB
 * of `[`) before the configuration limits could refuse them.
 */
function jsonNesting(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > deepest) deepest = depth;
      if (deepest > LIMITS.maxNestingDepth + 1) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

export function registerResourcesApi(router: Router, deps: ResourcesApiDeps): void {
  const { store, metrics } = deps;
  const limits = deps.limits ?? DEFAULT_CONFIG_LIMITS;

  router.route(
    'POST',
    '/v1/apply',
    async (req) => {
      const dryRun = flag(req, 'dryRun');
      try {
        const result = await applyDocuments(store, await readRequestBody(req, limits.maxTextBytes), { dryRun, trustDomain: deps.trustDomain, limits });
        metrics.applies.inc({ result: dryRun ? 'dry_run' : result.resources.every((r) => r.action === 'unchanged') ? 'unchanged' : 'applied' });
        return { body: result };
      } catch (err) {
        if (err instanceof ConfigInvalidError) metrics.applies.inc({ result: 'invalid' });
        else if (isTrellisError(err, 'TRELLIS_CONFLICT')) metrics.applies.inc({ result: 'conflict' });
        throw err;
      }
    },
    { auth: 'admin', query: ['dryRun'], maxBodyBytes: limits.maxTextBytes },
  );

  router.route(
    'GET',
    '/v1/mesh',
    async () => {
      const { entries } = await store.list<StoredResource>(KEYS.resource('Mesh', ''));
      const mesh = entries[0];
      if (mesh === undefined) throw new NotFoundError('no Mesh document has been applied (instances use the defaults)');
      return { body: withRevision(mesh) };
    },
    { auth: 'admin', query: [] },
  );

  router.route(
    'GET',
    '/v1/services',
    async () => {
      const { entries, revision } = await store.list<StoredResource>(KEYS.resource('Service', ''));
      return { body: { revision, items: entries.map(withRevision) } };
    },
    { auth: 'admin', query: [] },
  );

  router.route(
    'GET',
    '/v1/services/:name',
    async (req) => {
      const name = serviceName(req);
      const entry = await store.get<StoredResource>(KEYS.resource('Service', name));
      if (entry === undefined) throw new NotFoundError(`no Service ${name}`);
      return { body: withRevision(entry) };
    },
    { auth: 'admin', query: [] },
  );

  router.route(
    'DELETE',
    '/v1/services/:name',
    async (req) => {
      const name = serviceName(req);
      const done = await deleteService(store, name, revisionParam(req));
      if (done === undefined) throw new NotFoundError(`no Service ${name}`);
      return { body: { kind: 'Service', name, revision: done.revision, action: 'deleted' } };
    },
    { auth: 'admin', query: ['revision'] },
  );
}
