/**
 * Checks the options given to `meshClient()` before anything is started, so every mistake is
 * one TRELLIS_CONFIG_INVALID naming the option (`meshClient.tls.key`), the value or the absolute
 * path it resolved to, and the fix — instead of a raw TypeError, a silently ignored option, or
 * a relative path with no directory. The options are configuration like the YAML, so they share
 * its error code; TRELLIS_INVALID_ARGUMENT stays for per-request mistakes.
 *
 * Not errors (warnings): a missing `service` (a pure client — a script, a load generator — has
 * no identity of its own) and a `service` with no Service document (it needs none to call out;
 * a close match is reported as a likely typo).
 */
import { isLabelKey, isLabelValue } from './config/schema-common.js';
import { statSync } from 'node:fs';
import path from 'node:path';
import { ConfigInvalidError } from './core/errors.js';
import { configLimitProblems } from './config/config-limits.js';
import type { ConfigIssue } from './core/errors.js';
import { didYouMean } from './core/did-you-mean.js';
import { UNKNOWN_HOST_POLICIES } from './client/dispatch-origin.js';
import type { MeshClientOptions } from './mesh-client.js';

const FILE = 'meshClient options';

/** Every option meshClient knows; `satisfies` keeps the list in step with the interface. */
const KNOWN = {
  service: true, config: true, watchConfig: true, labels: true, controlPlane: true, token: true, tls: true,
  identity: true, tracerProvider: true, accessLog: true, metrics: true, logger: true, clock: true, random: true,
  dispatcher: true, cacheDir: true, configLimits: true,
} as const satisfies Record<keyof MeshClientOptions, true>;

const TLS_FILES = { ca: 'the trust bundle (CA certificates, PEM)', cert: "this workload's certificate chain (PEM)", key: "this workload's private key (PEM)" } as const;

/** Same shape as a Service document's name: a DNS label, as it becomes a SPIFFE path and a host. */
const SERVICE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function issue(option: string, message: string): ConfigIssue {
  return { file: FILE, document: 0, path: `meshClient.${option}`, message };
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function unknownKeys(obj: Record<string, unknown>, known: readonly string[], prefix: string, out: ConfigIssue[]): void {
  for (const key of Object.keys(obj)) {
    if (known.includes(key) || obj[key] === undefined) continue;
    out.push(issue(`${prefix}${key}`, `unknown option${didYouMean(key, known)}; known options: ${known.join(', ')}`));
  }
}

/** A path option that must name a readable file: the absolute path in the message when not. */
function fileProblem(option: string, file: string, what: string, baseDir: string): ConfigIssue | undefined {
  const abs = path.resolve(baseDir, file);
  try {
    if (statSync(abs).isDirectory()) return issue(option, `${abs} is a directory; give the path of ${what}`);
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : `cannot read (${code ?? String(err)})`;
    const rel = path.isAbsolute(file) ? '' : ` (${JSON.stringify(file)} resolved against the working directory ${baseDir})`;
    return issue(option, `${why}: ${abs}${rel}; give the path of ${what}`);
  }
}

function checkTls(tls: unknown, baseDir: string, out: ConfigIssue[]): void {
  if (!isPlainObject(tls)) {
    out.push(issue('tls', `expected { ca, cert, key } (paths of PEM files, e.g. from \`trellis cert issue\`), got ${show(tls)}`));
    return;
  }
  unknownKeys(tls, Object.keys(TLS_FILES), 'tls.', out);
  for (const [part, what] of Object.entries(TLS_FILES)) {
    const v = tls[part];
    if (v === undefined) out.push(issue(`tls.${part}`, `missing; give the path of ${what} (\`trellis cert issue\` writes ca.pem, <service>.pem and <service>.key)`));
    else if (typeof v !== 'string' || v === '') out.push(issue(`tls.${part}`, `expected the path of ${what}, got ${show(v)}`));
    else {
      const p = fileProblem(`tls.${part}`, v, what, baseDir);
      if (p !== undefined) out.push(p);
    }
  }
}

/** Config given as paths (not YAML text, not objects): each must exist, named absolutely if not. */
function checkConfigPaths(paths: readonly string[], baseDir: string, out: ConfigIssue[]): void {
  for (const [i, p] of paths.entries()) {
    const option = paths.length === 1 ? 'config' : `config[${i}]`;
    const problem = fileProblem(option, p, 'a YAML file of Mesh and Service documents (or pass YAML text or parsed documents)', baseDir);
    if (problem !== undefined) out.push(problem);
  }
}

/** `controlPlane`, `token`, `cacheDir`: well-formed, and not mixed with what they replace. */
function checkControlPlane(o: MeshClientOptions & Record<string, unknown>, out: ConfigIssue[]): void {
  const cp: unknown = o.controlPlane;
  if (cp === undefined) {
    for (const k of ['token', 'cacheDir'] as const) if (o[k] !== undefined) out.push(issue(k, 'only used with `controlPlane` (the control-plane replicas to bootstrap from)'));
    return;
  }
  if (!Array.isArray(cp) || cp.length === 0) out.push(issue('controlPlane', `expected a list of control-plane URLs, e.g. ['https://127.0.0.1:7400'], got ${show(cp)}`));
  else {
    cp.forEach((u: unknown, i) => {
      let ok = false;
      try {
        ok = typeof u === 'string' && new URL(u).protocol === 'https:';
      } catch {
        ok = false;
      }
      if (!ok) out.push(issue(`controlPlane[${i}]`, `expected an https:// URL of a control-plane replica, got ${show(u)}`));
    });
  }
  if (o.service === undefined) out.push(issue('service', 'required with `controlPlane`: it is the identity this instance bootstraps, subscribes and registers as'));
  if (o.token !== undefined && (typeof o.token !== 'string' || o.token === '')) out.push(issue('token', `expected a bootstrap token (text from \`trellis token create\`), got ${show(o.token)}`));
  if (o.cacheDir !== undefined && (typeof o.cacheDir !== 'string' || o.cacheDir === '')) out.push(issue('cacheDir', `expected a directory path, got ${show(o.cacheDir)}`));
  for (const k of ['config', 'tls', 'identity'] as const) {
    if (o[k] !== undefined) out.push(issue(k, `not used with \`controlPlane\`: configuration and the workload identity come from the control plane; give one or the other`));
  }
}

/**
 * Refuses options meshClient cannot honour (throws ConfigInvalidError listing every problem);
 * `configPaths` are the `config` entries that are file paths; `baseDir` the working directory.
 */
export function checkMeshClientOptions(options: unknown, configPaths: readonly string[], baseDir: string): void {
  if (!isPlainObject(options)) throw new ConfigInvalidError([issue('', `meshClient() takes an options object, e.g. meshClient({ service: 'checkout', config: './mesh.yaml' }); got ${show(options)}`)]);
  const out: ConfigIssue[] = [];
  unknownKeys(options, Object.keys(KNOWN), '', out);
  const o = options as MeshClientOptions & Record<string, unknown>;
  if (o.service !== undefined && (typeof o.service !== 'string' || !SERVICE_NAME.test(o.service))) {
    out.push(issue('service', `expected this workload's service name, a DNS label (lowercase letters, digits and "-", at most 63), got ${show(o.service)}`));
  }
  if (o.watchConfig !== undefined && typeof o.watchConfig !== 'boolean') out.push(issue('watchConfig', `expected true or false, got ${show(o.watchConfig)}`));
  if (o.labels !== undefined && (!isPlainObject(o.labels) || Object.values(o.labels).some((v) => typeof v !== 'string'))) {
    out.push(issue('labels', `expected an object of string values, e.g. { version: 'v1' }, got ${show(o.labels)}`));
  } else if (o.labels !== undefined) {
    for (const [k, v] of Object.entries(o.labels)) {
      if (!isLabelKey(k) || !isLabelValue(v)) out.push(issue(`labels.${k.slice(0, 63)}`, `${show(v)} is not a label Service documents accept (keys and values: letters, digits, "-", "_", ".", at most 63; keys may carry a "prefix/"): subsets select on these labels`));
    }
  }
  if (o.logger !== undefined && (!isPlainObject(o.logger) || typeof o.logger.warn !== 'function')) out.push(issue('logger', 'expected an object with a warn(message) function, e.g. console'));
  if (o.dispatcher !== undefined) {
    if (!isPlainObject(o.dispatcher)) out.push(issue('dispatcher', `expected { unknownHosts: 'refuse' | 'pass' }, got ${show(o.dispatcher)}`));
    else {
      unknownKeys(o.dispatcher, ['unknownHosts'], 'dispatcher.', out);
      const u = o.dispatcher.unknownHosts;
      if (u !== undefined && !(UNKNOWN_HOST_POLICIES as readonly unknown[]).includes(u)) {
        out.push(issue('dispatcher.unknownHosts', `expected ${UNKNOWN_HOST_POLICIES.map((p) => `'${p}'`).join(' or ')}, got ${show(u)}`));
      }
    }
  }
  for (const p of configLimitProblems(o.configLimits, 'configLimits')) out.push(issue(p.path, p.message));
  checkControlPlane(o, out);
  if (o.tls !== undefined && o.identity === undefined) checkTls(o.tls, baseDir, out);
  checkConfigPaths(configPaths, baseDir, out);
  if (out.length > 0) throw new ConfigInvalidError(out);
}

/** Warnings for a service name that is legal but probably not what was meant (see the header). */
export function serviceNameWarnings(service: string | undefined, serviceDocuments: readonly string[]): string[] {
  if (service === undefined) {
    return ["meshClient: no `service` given: this instance has no service name, so its calls carry no caller in metrics and logs and mesh.serve() applies no Service's inbound policy; set meshClient({ service: '<name>' })"];
  }
  if (serviceDocuments.includes(service)) return [];
  const hint = didYouMean(service, serviceDocuments);
  return hint === '' ? [] : [`meshClient.service ${JSON.stringify(service)} has no Service document${hint}; a pure client needs none, but mesh.serve() will apply no inbound policy to it`];
}
