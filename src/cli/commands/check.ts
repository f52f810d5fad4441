/**
 * `trellis check`: is the mesh healthy, as `linkerd check` asks it. Against the control plane:
 * reachable, its certificate valid and chaining to the CA the admin token pins, its store
 * healthy, its CA and serving certificate not near expiry, clocks in step; every Service valid
 * (checked here again, by the same config code instances use), with warnings for callers
 * without a Service document and subsets that select nothing; every instance ACKed its latest
 * configuration (NACKs shown with their reason), certificates not near expiry, clocks not
 * skewed. Exit 1 when any check fails.
 *
 * `trellis check --pre`: can a control plane run here — Node version, the listen port free,
 * the data directory writable.
 */
import type { InstanceRecord, InstanceStatus, StoredResource } from '../../controlplane/store/store.js';
import { loadConfig } from '../../config/load.js';
import { ConfigInvalidError, isTrellisError } from '../../core/errors.js';
import { CheckReport } from '../check-report.js';
import { runPreChecks } from '../check-pre.js';
import type { Command } from '../command.js';
import { configWarnings } from '../config-warnings.js';
import { connectControlPlane, ControlPlaneCallError, CONTROL_PLANE_HELP, CONTROL_PLANE_OPTIONS, type ControlPlaneConnection } from '../control-plane-client.js';

const DAY_MS = 86_400_000;
/** Skew beyond the 60 s certificates are backdated by: peers would refuse fresh certificates. */
const SKEW_FAIL_MS = 60_000;
const SKEW_WARN_MS = 5_000;

interface Status {
  now: number;
  version: string;
  store: { kind: string; ok: boolean; detail: string };
  instances: { registered: number; connected: number };
  ca: { trustDomain: string; pins: string[]; issuerNotAfter: number; anchorNotAfter: number };
  servingCertificateNotAfter: number;
}

interface InstanceView {
  id: string;
  service: string;
  record: InstanceRecord | null;
  status: InstanceStatus | null;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function reasonOf(err: unknown): string {
  if (err instanceof ControlPlaneCallError) return err.message;
  if (isTrellisError(err)) return err.message;
  const e = err as NodeJS.ErrnoException;
  return `${e.code !== undefined ? `${e.code}: ` : ''}${e.message ?? String(err)}`;
}

export const check: Command = {
  path: ['check'],
  summary: 'Check the control plane, the configuration and every instance (or, with --pre, this machine); exit 1 on any failure.',
  help: ['--pre                  check this machine can run a control plane instead', '--data DIR             (--pre) data directory to check', '--listen HOST:PORT     (--pre) address to check is free (default 127.0.0.1:7400)', ...CONTROL_PLANE_HELP],
  options: { pre: { type: 'boolean' }, data: { type: 'string' }, listen: { type: 'string' }, ...CONTROL_PLANE_OPTIONS },
  async run(values, io) {
    const report = new CheckReport(io.stdout);
    if (values['pre'] === true) {
      await runPreChecks(values, report);
      return report.finish();
    }
    report.section('control-plane');
    let cp: ControlPlaneConnection;
    try {
      cp = await connectControlPlane(values, io);
    } catch (err) {
      if (isTrellisError(err, 'TRELLIS_PEER_IDENTITY')) {
        report.pass('control plane is reachable');
        report.fail('control plane certificate is valid and matches the CA the admin token pins', [reasonOf(err)]);
      } else if ((err as Error).name === 'UsageError') throw err;
      else report.fail('control plane is reachable', [reasonOf(err)]);
      return report.finish();
    }
    try {
      report.pass(`control plane is reachable at ${cp.url}`);
      report.pass(`control plane certificate is valid and matches the pinned CA ${cp.trust.pins[0] ?? ''}`);
      const t0 = io.clock.wall();
      const status = (await cp.call('GET', '/v1/status')).body as Status;
      const t1 = io.clock.wall();
      if (status.store.ok) report.pass(`store is healthy (${status.store.detail})`);
      else report.fail('store is healthy', [`${status.store.kind} store: ${status.store.detail}`]);
      const now = io.clock.wall();
      const caEnds = Math.min(status.ca.issuerNotAfter, status.ca.anchorNotAfter);
      if (caEnds <= now + 7 * DAY_MS) report.fail('CA issuer and trust anchor are not near expiry', [`the CA can issue until ${iso(caEnds)}; rotate the issuer (issuer NotAfter ${iso(status.ca.issuerNotAfter)}, anchor ${iso(status.ca.anchorNotAfter)})`]);
      else if (caEnds <= now + 30 * DAY_MS) report.warn(`CA issuer or trust anchor expires soon (${iso(caEnds)})`);
      else report.pass(`CA issuer and trust anchor are not near expiry (issuer until ${iso(status.ca.issuerNotAfter)})`);
      if (status.servingCertificateNotAfter <= now) report.fail('control plane serving certificate is valid', [`expired at ${iso(status.servingCertificateNotAfter)}`]);
      else report.pass(`control plane serving certificate is valid until ${iso(status.servingCertificateNotAfter)}`);
      const skew = status.now - (t0 + t1) / 2;
      const slack = (t1 - t0) / 2;
      const skewAbs = Math.max(0, Math.abs(skew) - slack);
      if (skewAbs > SKEW_FAIL_MS) report.fail('clock is in step with the control plane', [`this machine's clock is ${Math.round(skew / 1000)} s ${skew > 0 ? 'behind' : 'ahead of'} the control plane's; certificates are backdated only 60 s`]);
      else if (skewAbs > SKEW_WARN_MS) report.warn(`clock differs from the control plane's by ${Math.round(skew / 1000)} s`);
      else report.pass('clock is in step with the control plane');

      report.section('configuration');
      const services = ((await cp.call('GET', '/v1/services')).body as { items: (StoredResource & { metadata: { name: string; revision?: number } })[] }).items;
      let mesh: StoredResource | undefined;
      try {
        mesh = (await cp.call('GET', '/v1/mesh')).body as StoredResource;
      } catch (err) {
        if (!(err instanceof ControlPlaneCallError && err.status === 404)) throw err;
      }
      const strip = (d: StoredResource): StoredResource => {
        const { revision: _revision, ...metadata } = d.metadata;
        return { ...d, metadata: metadata as StoredResource['metadata'] };
      };
      try {
        const docs = [...(mesh !== undefined ? [strip(mesh)] : []), ...services.map(strip)];
        if (docs.length > 0) await loadConfig(docs);
        report.pass(`every Service is valid (${services.length} Service${services.length === 1 ? '' : 's'}${mesh !== undefined ? ' and the Mesh' : ''}, version ${status.version})`);
      } catch (err) {
        if (!(err instanceof ConfigInvalidError)) throw err;
        report.fail('every Service is valid', err.issues.map((i) => `${i.path === '' ? '<root>' : i.path}: ${i.message}`));
      }
      const instances = ((await cp.call('GET', '/v1/instances')).body as { items: InstanceView[] }).items;
      const labels = new Map<string, Record<string, string>[]>();
      for (const i of instances) if (i.record !== null) labels.set(i.service, [...(labels.get(i.service) ?? []), { ...i.record.labels }]);
      const warnings = configWarnings({ services, instanceLabels: labels });
      for (const w of warnings) report.warn(w);

      report.section('instances');
      const live = instances.filter((i) => i.record !== null);
      const nacks = instances.filter((i) => i.status?.nacked !== undefined && (i.status.acked === undefined || Number(i.status.nacked.version) >= Number(i.status.acked)));
      const pending = live.filter((i) => !nacks.includes(i) && (i.status?.sent === undefined || i.status.acked !== i.status.sent));
      if (nacks.length === 0) report.pass(`no instance NACKed its configuration (${live.length} registered)`);
      else report.fail(`every instance ACKed its latest configuration`, nacks.map((i) => `instance ${i.id} of ${i.service} NACKed version ${i.status?.nacked?.version}: ${i.status?.nacked?.reason}`));
      if (pending.length > 0) report.warn(`${pending.length} instance${pending.length === 1 ? ' has' : 's have'} not ACKed the latest version yet`, pending.map((i) => `instance ${i.id} of ${i.service}: sent ${i.status?.sent ?? 'nothing yet'}, ACKed ${i.status?.acked ?? 'nothing'}`));
      const expired = live.filter((i) => i.record?.certificateNotAfter !== undefined && i.record.certificateNotAfter <= now);
      const expiring = live.filter((i) => i.record?.certificateNotAfter !== undefined && i.record.certificateNotAfter > now && i.record.certificateNotAfter <= now + 3_600_000);
      if (expired.length > 0) report.fail('instance certificates are valid', expired.map((i) => `instance ${i.id} of ${i.service}: certificate expired at ${iso(i.record?.certificateNotAfter ?? 0)}`));
      else if (expiring.length > 0) report.warn('instance certificates expire within the hour', expiring.map((i) => `instance ${i.id} of ${i.service}: NotAfter ${iso(i.record?.certificateNotAfter ?? 0)}`));
      else report.pass('instance certificates are not near expiry');
      const skewed = instances.filter((i) => i.status?.clockSkewMs !== undefined && Math.abs(i.status.clockSkewMs) > SKEW_FAIL_MS);
      if (skewed.length > 0) report.fail('instance clocks are in step', skewed.map((i) => `instance ${i.id} of ${i.service}: clock ${Math.round((i.status?.clockSkewMs ?? 0) / 1000)} s off the control plane's`));
      else report.pass('instance clocks are in step with the control plane');
    } catch (err) {
      if (err instanceof ControlPlaneCallError && (err.status === 401 || err.status === 403)) report.fail('the admin token is accepted', [reasonOf(err)]);
      else report.fail('the control plane answers its API', [reasonOf(err)]);
    } finally {
      cp.close();
    }
    return report.finish();
  },
};
