/**
 * What `trellis check` warns about in a configuration that is valid: an `authorization.from`
 * naming a service with no Service document (allowed — a browser frontend has none — but often
 * a typo), and a route backend or mirror subset that selects no endpoint (static endpoints'
 * labels, or the labels of registered instances for a Service found through the registry).
 * DNS-discovered Services carry no labels to check.
 */
export interface WarningInputs {
  /** Service documents (as applied). */
  readonly services: readonly { readonly metadata: { readonly name: string }; readonly spec?: unknown }[];
  /** Labels of the registered instances, by service. */
  readonly instanceLabels: ReadonlyMap<string, readonly Readonly<Record<string, string>>[]>;
}

type Rec = Record<string, unknown>;

function rec(v: unknown): Rec {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Rec) : {};
}

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : v === undefined ? [] : [v];
}

function labelsOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(rec(v))) out[k] = String(x);
  return out;
}

function selects(subset: Record<string, string>, labels: readonly Record<string, string>[]): boolean {
  return labels.some((l) => Object.entries(subset).every(([k, v]) => l[k] === v));
}

function show(subset: Record<string, string>): string {
  return `{${Object.entries(subset).map(([k, v]) => `${k}: ${v}`).join(', ')}}`;
}

export function configWarnings(input: WarningInputs): string[] {
  const names = new Set(input.services.map((s) => s.metadata.name));
  const out: string[] = [];
  for (const s of input.services) {
    const name = s.metadata.name;
    const spec = rec(s.spec);
    const authz = rec(rec(spec['inbound'])['authorization']);
    const callers = new Set<string>();
    for (const rule of [...list(authz['allow']), ...list(authz['deny'])]) for (const c of list(rec(rule)['from'])) if (typeof c === 'string' && c !== '*') callers.add(c);
    for (const c of callers) if (!names.has(c)) out.push(`Service ${name}: inbound.authorization names caller "${c}", which has no Service document (fine for a caller outside the mesh, e.g. a browser frontend; otherwise a typo?)`);

    let endpoints: readonly Record<string, string>[] | undefined;
    if (Array.isArray(spec['endpoints'])) endpoints = spec['endpoints'].map((e) => labelsOf(rec(e)['labels']));
    else if (spec['dns'] === undefined) endpoints = input.instanceLabels.get(name) ?? [];
    if (endpoints === undefined) continue;
    const source = Array.isArray(spec['endpoints']) ? 'endpoint' : 'registered instance';
    list(spec['routes']).forEach((r, i) => {
      const route = rec(r);
      const routeName = typeof route['name'] === 'string' ? route['name'] : `#${i}`;
      const subsets: { where: string; subset: Record<string, string> }[] = [];
      list(route['backends']).forEach((b) => {
        const sub = rec(b)['subset'];
        if (sub !== undefined) subsets.push({ where: 'backend', subset: labelsOf(sub) });
      });
      const mirror = rec(route['mirror'])['subset'];
      if (mirror !== undefined) subsets.push({ where: 'mirror', subset: labelsOf(mirror) });
      for (const { where, subset } of subsets) {
        if (!selects(subset, endpoints)) out.push(`Service ${name} route ${routeName}: ${where} subset ${show(subset)} selects no ${source}${endpoints.length === 0 ? ` (there are none)` : ''}`);
      }
    });
  }
  return out;
}
