/**
 * A pushed snapshot as configuration: its Mesh and Service documents, with each Service that has
 * neither `endpoints` nor `dns` given the registry's endpoints as its `endpoints`, validated by
 * the same code as a YAML file (`parseConfigDocuments`). So a snapshot is one atomic swap of
 * config and endpoints together — a route and the instances it names change at once — and
 * registry endpoints pass the same address policy static ones do.
 *
 * Why endpoints go into the documents rather than a separate discovery source: the snapshot is
 * already whole and versioned, the file path's swap already keeps pools, EWMA, breakers and
 * budgets per endpoint and service across versions, and no second source has to be kept in
 * step with the first. A registry address the policy refuses (an instance bound to 0.0.0.0
 * registers what no caller can dial) is left out with a warning, never failing the snapshot;
 * a Service with no registry endpoints keeps neither, so calls fail fast with
 * TRELLIS_NO_ENDPOINTS.
 */
import { isLabelKey, isLabelValue } from '../config/schema-common.js';
import { parseConfigDocumentsCached } from '../config/load.js';
import type { DocumentCache } from '../config/document-cache.js';
import type { ConfigLimits } from '../config/config-limits.js';
import { ConfigInvalidError } from '../core/errors.js';
import { refusedAddressReason } from '../config/address.js';
import type { MeshConfig } from '../config/types.js';
import type { SnapshotDocument, SnapshotMessage } from '../controlplane/sync/protocol.js';

function hostOf(address: string): string {
  const i = address.lastIndexOf(':');
  const host = i === -1 ? address : address.slice(0, i);
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/**
 * The documents a snapshot stands for, registry endpoints included. With `trustDomain` (the
 * control plane CA's), a Mesh document that names none gets it: identities are issued in the
 * CA's trust domain, and the default (`cluster.local`) would make every peer check fail.
 */
export function snapshotDocuments(snapshot: SnapshotMessage, onWarn: (m: string) => void, trustDomain?: string): unknown[] {
  const docs: unknown[] = [];
  const mesh = snapshot.mesh ?? (trustDomain === undefined ? null : { apiVersion: 'trellis/v1', kind: 'Mesh', metadata: { name: 'default' }, spec: {} });
  if (mesh !== null) {
    const spec = mesh.spec as Record<string, unknown> | undefined;
    const named = typeof spec === 'object' && spec !== null && spec.trustDomain !== undefined;
    docs.push(trustDomain === undefined || named || typeof spec !== 'object' || spec === null ? mesh : { ...mesh, spec: { ...spec, trustDomain } });
  }
  for (const doc of Array.isArray(snapshot.services) ? snapshot.services : []) {
    const registry = snapshot.endpoints?.[doc?.metadata?.name];
    const spec = doc?.spec as Record<string, unknown> | undefined;
    if (registry === undefined || typeof spec !== 'object' || spec === null || spec.endpoints !== undefined || spec.dns !== undefined) {
      docs.push(doc);
      continue;
    }
    const endpoints: { address: string; labels: Record<string, string> }[] = [];
    const seen = new Set<string>();
    for (const e of registry) {
      const why = refusedAddressReason(hostOf(e.address));
      if (why !== undefined) {
        onWarn(`registry endpoint ${e.address} of ${doc.metadata.name} (instance ${e.instance}) left out: the address ${why}`);
        continue;
      }
      const badLabel = Object.entries(e.labels ?? {}).find(([k, v]) => !isLabelKey(k) || typeof v !== 'string' || !isLabelValue(v));
      if (badLabel !== undefined) {
        onWarn(`registry endpoint ${e.address} of ${doc.metadata.name} (instance ${e.instance}) left out: its label ${badLabel[0].slice(0, 63)}=${JSON.stringify(String(badLabel[1]).slice(0, 64))} is not one a Service document accepts`);
        continue;
      }
      if (seen.has(e.address)) continue;
      seen.add(e.address);
      endpoints.push({ address: e.address, labels: { ...e.labels } });
    }
    const withEndpoints: SnapshotDocument = endpoints.length === 0 ? doc : { ...doc, spec: { ...spec, endpoints } };
    docs.push(withEndpoints);
  }
  return docs;
}

/**
 * Validates a snapshot as configuration; with `trustDomain`, the Mesh document must be in it.
 * @throws ConfigInvalidError naming the document and field path (the NACK reason).
 */
export function snapshotConfig(snapshot: SnapshotMessage, onWarn: (m: string) => void, trustDomain?: string, limits?: ConfigLimits, cache?: DocumentCache): MeshConfig {
  const file = `control plane snapshot ${snapshot.version}`;
  const config = parseConfigDocumentsCached(snapshotDocuments(snapshot, onWarn, trustDomain), file, { limits }, cache);
  if (trustDomain !== undefined && config.mesh.trustDomain !== trustDomain) {
    throw new ConfigInvalidError([{ file, document: 0, path: 'spec.trustDomain', message: `"${config.mesh.trustDomain}" is not the trust domain of the control plane's CA ("${trustDomain}"), which every workload certificate is issued in; peers could not verify each other` }]);
  }
  return config;
}
