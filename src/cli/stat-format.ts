/**
 * `trellis stat` output: the `/v1/stat` body as aligned tables, in the manner of
 * `linkerd viz stat` (one row per service; with a service, its routes, instances and edges).
 * Pure: a body in, text out.
 */
import type { GoldenFigures, StatBody, StatInstance } from '../controlplane/fleet/stat-body.js';

/** Control characters (a terminal escape sequence in a label, say) shown as `?`: names come from instances. */
const clean = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');

/** Columns padded to their widest cell; numbers right-aligned. */
export function table(header: readonly string[], cells: readonly (readonly string[])[], rightAligned: ReadonlySet<number> = new Set()): string {
  const rows = cells.map((r) => r.map(clean));
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (rightAligned.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

export function formatMs(ms: number | null): string {
  if (ms === null) return '-';
  if (ms >= 1000) return `${(ms / 1000).toFixed(ms >= 10_000 ? 0 : 1)}s`;
  return ms < 10 ? `${ms.toFixed(1)}ms` : `${Math.round(ms)}ms`;
}

export function formatRps(rps: number): string {
  return `${rps >= 100 ? rps.toFixed(0) : rps >= 10 ? rps.toFixed(1) : rps.toFixed(2)}rps`;
}

export function formatSuccess(rate: number | null): string {
  return rate === null ? '-' : `${(rate * 100).toFixed(2)}%`;
}

function figureCells(f: GoldenFigures | null): string[] {
  if (f === null || f.requests === 0) return ['-', '-', '-', '-', '-'];
  return [formatSuccess(f.successRate), formatRps(f.rps), formatMs(f.latencyMs.p50), formatMs(f.latencyMs.p95), formatMs(f.latencyMs.p99)];
}

const FIGURE_HEADER = ['SUCCESS', 'RPS', 'LATENCY_P50', 'LATENCY_P95', 'LATENCY_P99'];

function labels(l: Readonly<Record<string, string>>): string {
  const s = Object.entries(l).map(([k, v]) => `${k}=${v}`).join(',');
  return s === '' ? '-' : s;
}

function configOf(i: StatInstance): string {
  const c = i.config;
  if (c.nacked !== null && (c.acked === null || Number(c.nacked.version) >= Number(c.acked))) return `${c.nacked.version} NACK`;
  if (c.acked !== null) return c.sent !== null && c.sent !== c.acked ? `${c.acked} ACK (${c.sent} sent)` : `${c.acked} ACK`;
  return c.sent !== null ? `${c.sent} sent` : '-';
}

function expiry(notAfter: number | null, now: number): string {
  if (notAfter === null) return '-';
  const h = (notAfter - now) / 3_600_000;
  if (h < 0) return 'EXPIRED';
  return h >= 48 ? `${Math.floor(h / 24)}d` : `${Math.floor(h)}h${Math.floor((h % 1) * 60)}m`;
}

function noTraffic(body: StatBody): string | undefined {
  const any = body.services.some((s) => (s.figures?.requests ?? 0) > 0) || body.edges.some((e) => e.requests > 0);
  if (any) return undefined;
  const who = body.service === null ? 'the mesh' : body.service;
  return `No traffic to ${who} in the last ${body.window} (${body.reportingInstances} instance${body.reportingInstances === 1 ? '' : 's'} reporting). Send requests through the mesh, or widen the window with --window 10m.`;
}

/** The whole output of one `trellis stat` frame. */
export function formatStat(body: StatBody): string {
  const R = new Set([1, 2, 3, 4, 5, 6]);
  const out: string[] = [];
  if (body.services.length === 0) {
    out.push(body.service === null ? 'No services: apply Service documents or start instances with a control plane.' : `No service ${body.service}: no Service document, instance or traffic by that name.`);
    return `${out.join('\n')}\n`;
  }
  out.push(table(['NAME', 'INSTANCES', ...FIGURE_HEADER], body.services.map((s) => [s.view === 'outbound' ? `${s.name}*` : s.name, String(s.instances), ...figureCells(s.figures)]), R));
  const empty = noTraffic(body);
  if (empty !== undefined) out.push('', empty);
  if (body.services.some((s) => s.view === 'outbound')) out.push('', '* serves nothing: the figures are what it sent.');
  if (body.service !== null) {
    const routes = body.routes ?? [];
    if (routes.length > 0) {
      out.push('', table(['ROUTE', ...FIGURE_HEADER, 'BACKENDS'], routes.map((r) => [
        r.route,
        ...figureCells(r.figures),
        r.backends.map((b) => `${labels(b.subset)} ${Math.round(b.configuredShare * 100)}%${b.liveShare !== null ? ` (live ${Math.round(b.liveShare * 100)}%)` : ''}`).join(', ') || '-',
      ]), new Set([1, 2, 3, 4, 5])));
    }
    const instances = body.instances ?? [];
    if (instances.length > 0) {
      out.push('', table(['INSTANCE', 'LABELS', 'CONFIG', ...FIGURE_HEADER, 'CERT_EXPIRES'], instances.map((i) => [
        i.registered ? i.id : `${i.id} (gone)`,
        labels(i.labels),
        configOf(i),
        ...figureCells(i.inbound ?? i.outbound),
        expiry(i.certificateNotAfter, body.at),
      ]), new Set([3, 4, 5, 6, 7])));
    }
  }
  const edges = body.edges.filter((e) => e.requests > 0);
  if (edges.length > 0) {
    out.push('', table(['FROM', 'TO', ...FIGURE_HEADER], edges.map((e) => [e.from, e.failing ? `${e.to} (failing)` : e.to, ...figureCells(e)]), new Set([2, 3, 4, 5, 6])));
  }
  return `${out.join('\n')}\n`;
}
