/**
 * `trellis control-plane --data DIR [--listen HOST:PORT] [--etcd URL,...] [--trust-domain TD]
 * [--key-passphrase-env VAR] [--max-documents N] [--max-yaml-nodes N] [--max-text-bytes N]`:
 * runs one control-plane replica until SIGINT or SIGTERM, then closes it gracefully. What it
 * prints on stdout, once listening: the URL it is bound to (port 0 picks a free one), the CA pin
 * and where the admin token is; nothing secret.
 */
import { startControlPlane } from '../../controlplane/control-plane.js';
import { isTrustDomain } from '../../tls/spiffe.js';
import { optionalString, requiredString, secretFromEnv } from '../args.js';
import { UsageError, type Command } from '../command.js';
import { configLimitProblems, type ConfigLimits } from '../../config/config-limits.js';

export const controlPlane: Command = {
  path: ['control-plane'],
  summary: 'Run a control-plane replica: CA, configuration store, registry and REST API on one port.',
  help: [
    '--data DIR                  data directory (created 0700): store, ca/, admin-token',
    '--listen HOST:PORT          where to serve the API (default 127.0.0.1:7400; port 0: any free port)',
    '--etcd URL,...              keep state in etcd (replicas sharing it share everything)',
    '--trust-domain TD           trust domain of the CA made on first start (default cluster.local)',
    '--key-passphrase-env VAR    encrypt the issuer and token keys in the store with the passphrase in VAR',
    '--dashboard HOST:PORT       serve the read-only dashboard there (default 127.0.0.1:7401, or a free port',
    '                            when --listen asks for port 0); "off" serves none',
    '--prometheus URL            read golden metrics from this Prometheus instead of instance reports',
    '--max-documents N           most documents an apply is validated with, stored ones included (default 10000)',
    '--max-yaml-nodes N          most YAML nodes in one apply (default 100000)',
    '--max-text-bytes N          largest apply body in bytes (default 4194304)',
  ],
  options: {
    data: { type: 'string' },
    listen: { type: 'string' },
    etcd: { type: 'string' },
    'trust-domain': { type: 'string' },
    'key-passphrase-env': { type: 'string' },
    dashboard: { type: 'string' },
    prometheus: { type: 'string' },
    'max-documents': { type: 'string' },
    'max-yaml-nodes': { type: 'string' },
    'max-text-bytes': { type: 'string' },
  },
  async run(values, io) {
    const dataDir = requiredString(values, 'data');
    const listen = optionalString(values, 'listen') ?? '127.0.0.1:7400';
    const etcdRaw = optionalString(values, 'etcd');
    const etcd = etcdRaw?.split(',').map((u) => u.trim()).filter((u) => u !== '');
    if (etcd !== undefined && etcd.length === 0) throw new UsageError('--etcd needs at least one URL');
    const trustDomain = optionalString(values, 'trust-domain');
    if (trustDomain !== undefined && !isTrustDomain(trustDomain)) throw new UsageError(`--trust-domain "${trustDomain.slice(0, 64)}" is not a valid trust domain (lowercase letters, digits, ".", "-", "_")`);
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):\d{1,5}$/.test(listen)) throw new UsageError(`--listen "${listen.slice(0, 64)}" is not HOST:PORT`);
    const dashboardFlag = optionalString(values, 'dashboard');
    if (dashboardFlag !== undefined && dashboardFlag !== 'off' && !/^(\[[0-9a-fA-F:.]+\]|[^:[\]]+):\d{1,5}$/.test(dashboardFlag)) throw new UsageError(`--dashboard "${dashboardFlag.slice(0, 64)}" is not HOST:PORT (or "off")`);
    const prometheus = optionalString(values, 'prometheus');
    if (prometheus !== undefined && !/^https?:\/\/[^\s]+$/.test(prometheus)) throw new UsageError(`--prometheus "${prometheus.slice(0, 64)}" is not an http(s) URL`);
    const dashboard = dashboardFlag === 'off' ? undefined : (dashboardFlag ?? (listen.endsWith(':0') ? '127.0.0.1:0' : '127.0.0.1:7401'));
    const keyPassphrase = secretFromEnv(values, 'key-passphrase-env', io);
    if (keyPassphrase !== undefined && keyPassphrase.length < 8) throw new UsageError('--key-passphrase-env: the passphrase must be at least 8 characters');
    const configLimits: ConfigLimits = {};
    for (const [flag, key] of [['max-documents', 'maxDocuments'], ['max-yaml-nodes', 'maxYamlNodes'], ['max-text-bytes', 'maxTextBytes']] as const) {
      const raw = optionalString(values, flag);
      if (raw === undefined) continue;
      const n = /^\d{1,10}$/.test(raw) ? Number(raw) : NaN;
      const problem = configLimitProblems({ [key]: n }, 'limits')[0];
      if (Number.isNaN(n) || problem !== undefined) throw new UsageError(`--${flag} "${raw.slice(0, 32)}": ${problem?.message ?? 'expected a whole number'}`);
      configLimits[key] = n;
    }
    const cp = await startControlPlane({
      configLimits,
      ...(keyPassphrase !== undefined ? { keyPassphrase } : {}),
      dataDir,
      listen,
      ...(dashboard !== undefined ? { dashboard } : {}),
      ...(prometheus !== undefined ? { prometheus } : {}),
      ...(etcd !== undefined ? { etcd } : {}),
      ...(trustDomain !== undefined ? { trustDomain } : {}),
      onWarn: (m) => io.stderr(`warning: ${m}\n`),
    });
    io.stdout(
      [
        `Trellis control plane ${cp.replicaId} listening on ${cp.url}`,
        `  trust domain ${cp.trustDomain}, CA pin ${cp.caPin}`,
        cp.adminTokenPath !== undefined
          ? `  admin token: ${cp.adminTokenPath} (mode 0600${cp.created ? ', created now' : ''}); use it with --admin-token @${cp.adminTokenPath} or TRELLIS_ADMIN_TOKEN`
          : '  admin token: in the data directory of the replica that created the CA',
        cp.dashboardUrl !== undefined ? `  dashboard: ${cp.dashboardUrl}` : '  dashboard: off',
        '',
      ].join('\n'),
    );
    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    io.stderr('closing the control plane\n');
    await cp.close();
    return 0;
  },
};
