/**
 * `trellis get service [NAME]`, `trellis get mesh`, `trellis get instances [SERVICE]`, each
 * with `-o table|json|yaml` (default table). Documents come back as applied, with
 * `metadata.revision`; `-o yaml` output can be edited and applied back (conditionally).
 */
import type { InstanceRecord, InstanceStatus, StoredResource } from '../../controlplane/store/store.js';
import type { Command, OptionValues, CliIo } from '../command.js';
import { connectControlPlane, CONTROL_PLANE_HELP, CONTROL_PLANE_OPTIONS } from '../control-plane-client.js';
import { json, outputFormat, table, yamlDocuments, type OutputFormat } from '../output.js';

const OPTIONS = { output: { type: 'string', short: 'o' }, ...CONTROL_PLANE_OPTIONS } as const;
const HELP = ['-o, --output FORMAT    table (default), json or yaml', ...CONTROL_PLANE_HELP];

type Doc = StoredResource & { metadata: { name: string; revision?: number } };

function spec(d: Doc): Record<string, unknown> {
  return (typeof d.spec === 'object' && d.spec !== null ? d.spec : {}) as Record<string, unknown>;
}

function count(v: unknown): string {
  return Array.isArray(v) ? String(v.length) : '';
}

async function fetchJson(values: OptionValues, io: CliIo, path: string): Promise<unknown> {
  const cp = await connectControlPlane(values, io);
  try {
    return (await cp.call('GET', path)).body;
  } finally {
    cp.close();
  }
}

function print(io: CliIo, format: OutputFormat, items: readonly unknown[], single: boolean, asTable: () => string): void {
  if (format === 'json') io.stdout(json(single ? items[0] : items));
  else if (format === 'yaml') io.stdout(yamlDocuments(items));
  else io.stdout(asTable());
}

export const getService: Command = {
  path: ['get', 'service'],
  summary: 'Show one Service document, or list them all.',
  help: HELP,
  options: OPTIONS,
  positionals: { names: ['NAME'], required: 0 },
  async run(values, io, positionals) {
    const format = outputFormat(values);
    const name = positionals[0];
    const items: Doc[] = name !== undefined ? [(await fetchJson(values, io, `/v1/services/${encodeURIComponent(name)}`)) as Doc] : ((await fetchJson(values, io, '/v1/services')) as { items: Doc[] }).items;
    print(io, format, items, name !== undefined, () =>
      table(
        ['NAME', 'PROTOCOL', 'DISCOVERY', 'ROUTES', 'REVISION'],
        items.map((d) => {
          const s = spec(d);
          const discovery = Array.isArray(s['endpoints']) ? `${count(s['endpoints'])} static` : typeof s['dns'] === 'string' ? `dns ${s['dns']}` : 'registry';
          return [d.metadata.name, String(s['protocol'] ?? 'http'), discovery, count(s['routes']) || '0', String(d.metadata.revision ?? '')];
        }),
      ),
    );
    return 0;
  },
};

export const getMesh: Command = {
  path: ['get', 'mesh'],
  summary: 'Show the Mesh document.',
  help: HELP,
  options: OPTIONS,
  async run(values, io) {
    const format = outputFormat(values);
    const d = (await fetchJson(values, io, '/v1/mesh')) as Doc;
    print(io, format, [d], true, () => {
      const s = spec(d);
      return table(['NAME', 'TRUST DOMAIN', 'MTLS', 'CERTIFICATE TTL', 'REVISION'], [[d.metadata.name, String(s['trustDomain'] ?? 'cluster.local'), String(s['mtls'] ?? 'strict'), String(s['certificateTTL'] ?? '24h'), String(d.metadata.revision ?? '')]]);
    });
    return 0;
  },
};

interface InstanceView {
  id: string;
  service: string;
  record: InstanceRecord | null;
  status: InstanceStatus | null;
}

function instanceState(i: InstanceView): string {
  const s = i.status;
  if (i.record === null) return 'gone';
  if (s === null || s.sent === undefined) return 'connecting';
  if (s.nacked !== undefined && (s.acked === undefined || Number(s.nacked.version) >= Number(s.acked))) return `NACK ${s.nacked.version}: ${s.nacked.reason}`;
  if (s.acked !== undefined && s.acked === s.sent) return 'ACK';
  return `pending ${s.sent}`;
}

export const getInstances: Command = {
  path: ['get', 'instances'],
  summary: 'List registered instances (of one service, when named) and what they did with their configuration.',
  help: HELP,
  options: OPTIONS,
  positionals: { names: ['SERVICE'], required: 0 },
  async run(values, io, positionals) {
    const format = outputFormat(values);
    const service = positionals[0];
    const body = (await fetchJson(values, io, `/v1/instances${service !== undefined ? `?service=${encodeURIComponent(service)}` : ''}`)) as { items: InstanceView[] };
    print(io, format, body.items, false, () =>
      table(
        ['SERVICE', 'INSTANCE', 'ENDPOINTS', 'LABELS', 'VERSION', 'STATE'],
        body.items.map((i) => [
          i.service,
          i.id,
          (i.record?.endpoints ?? []).map((e) => `${e.address}/${e.protocol}`).join(','),
          Object.entries(i.record?.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(','),
          i.status?.acked ?? '',
          instanceState(i),
        ]),
      ),
    );
    return 0;
  },
};
