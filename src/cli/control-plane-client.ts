/**
 * How CLI commands talk to a control plane. The URL comes from `--control-plane URL` or
 * TRELLIS_CONTROL_PLANE (several, comma-separated, are tried in turn), the admin token from
 * `--admin-token @FILE|VALUE` or TRELLIS_ADMIN_TOKEN. Nothing else is needed: the admin token
 * pins the control plane's CA, so the first request fetches the trust bundle over an unverified
 * connection and checks it against the pin (controlplane-client/pin.ts); every request after
 * that is verified by OpenSSL against that bundle, and the server must present the control
 * plane's SPIFFE ID.
 *
 * Refusals come back as `ControlPlaneCallError` carrying the API's code, message and issues.
 */
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { checkControlPlaneIdentity, fetchTrustBundle, pinOfToken, type TrustBundle } from '../controlplane-client/pin.js';
import type { ApiIssue } from '../controlplane/api-error.js';
import { UsageError, type CliIo, type OptionValues } from './command.js';
import { optionalString } from './args.js';

/** The largest answer a command reads (a `get instances` of a large fleet stays far below it). */
const MAX_ANSWER_BYTES = 64 << 20;

/** The options every control-plane command takes, for its `options` and `help`. */
export const CONTROL_PLANE_OPTIONS = {
  'control-plane': { type: 'string' },
  'admin-token': { type: 'string' },
} as const;

export const CONTROL_PLANE_HELP = [
  '--control-plane URL    control plane (or env TRELLIS_CONTROL_PLANE; several comma-separated are tried in turn)',
  '--admin-token @FILE    admin token file (or env TRELLIS_ADMIN_TOKEN; a literal VALUE works, with a warning)',
] as const;

/** A refusal from the control plane, as its API said it. */
export class ControlPlaneCallError extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues: readonly ApiIssue[];
  constructor(status: number, code: string, message: string, issues: readonly ApiIssue[] = []) {
    super(`${code}: ${message}`);
    this.name = 'ControlPlaneCallError';
    this.status = status;
    this.code = code;
    this.issues = issues;
  }
}

export interface CallResult {
  readonly status: number;
  readonly body: unknown;
}

export interface ControlPlaneConnection {
  readonly url: string;
  readonly trust: TrustBundle;
  /** Milliseconds the trust-bundle fetch took (a round trip, for clock-skew checks). */
  readonly firstRoundTripMs: number;
  call(method: string, path: string, body?: { text: string; contentType: string }): Promise<CallResult>;
  close(): void;
}

/** Whether the command line or environment names a control plane. */
export function controlPlaneConfigured(values: OptionValues, io: CliIo): boolean {
  return optionalString(values, 'control-plane') !== undefined || (io.env['TRELLIS_CONTROL_PLANE'] ?? '') !== '';
}

function adminToken(values: OptionValues, io: CliIo): string {
  const given = optionalString(values, 'admin-token');
  const raw = given ?? io.env['TRELLIS_ADMIN_TOKEN'];
  if (raw === undefined || raw.trim() === '') throw new UsageError('no admin token: give --admin-token @FILE (the control plane wrote DIR/admin-token) or set TRELLIS_ADMIN_TOKEN');
  if (raw.startsWith('@')) {
    const file = raw.slice(1);
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new UsageError(`--admin-token ${raw}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  if (given !== undefined) io.stderr('warning: an admin token given on the command line shows in `ps` and shell history; prefer --admin-token @FILE or TRELLIS_ADMIN_TOKEN\n');
  return raw.trim();
}

function urls(values: OptionValues, io: CliIo): string[] {
  const raw = optionalString(values, 'control-plane') ?? io.env['TRELLIS_CONTROL_PLANE'] ?? '';
  const list = raw.split(',').map((u) => u.trim()).filter((u) => u !== '');
  if (list.length === 0) throw new UsageError('no control plane: give --control-plane URL or set TRELLIS_CONTROL_PLANE');
  for (const u of list) {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      throw new UsageError(`control plane "${u.slice(0, 80)}" is not a URL (e.g. https://127.0.0.1:7400)`);
    }
    if (parsed.protocol !== 'https:') throw new UsageError(`control plane ${u.slice(0, 80)} must be https://`);
  }
  return list;
}

/**
 * Connects to the first control plane that answers and proves its identity.
 *
 * @throws UsageError when no URL or token is given; PeerIdentityError when the control plane is
 *   not the one the token pins; the last connection error when none answers.
 */
export async function connectControlPlane(values: OptionValues, io: CliIo): Promise<ControlPlaneConnection> {
  const token = adminToken(values, io);
  let pin: string;
  try {
    pin = pinOfToken(token);
  } catch (err) {
    throw new UsageError(`the admin token is not valid: ${(err as Error).message}`);
  }
  let lastError: unknown;
  for (const url of urls(values, io)) {
    const started = io.clock.now();
    let trust: TrustBundle;
    try {
      trust = await fetchTrustBundle(url, pin, { timeoutMs: 10_000 });
    } catch (err) {
      lastError = err;
      if ((err as { code?: string }).code === 'TRELLIS_PEER_IDENTITY') throw err;
      continue;
    }
    const firstRoundTripMs = io.clock.now() - started;
    const agent = new Agent({ keepAlive: true, maxSockets: 4, ca: trust.bundlePem, checkServerIdentity: checkControlPlaneIdentity(trust.trustDomain) });
    const base = new URL(url);
    return {
      url: base.origin,
      trust,
      firstRoundTripMs,
      close: () => agent.destroy(),
      call: (method, path, body) =>
        new Promise<CallResult>((resolve, reject) => {
          const headers: Record<string, string> = { authorization: `Bearer ${token}`, accept: 'application/json' };
          if (body !== undefined) {
            headers['content-type'] = body.contentType;
            headers['content-length'] = String(Buffer.byteLength(body.text));
          }
          const req = request(new URL(path, base), { method, agent, headers, timeout: 30_000 }, (res) => {
            const parts: Buffer[] = [];
            let size = 0;
            res.on('data', (c: Buffer) => {
              size += c.length;
              if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`the answer from ${base.origin} is larger than ${MAX_ANSWER_BYTES >> 20} MiB`));
              else parts.push(c);
            });
            res.on('error', reject);
            res.on('end', () => {
              const text = Buffer.concat(parts).toString('utf8');
              let json: unknown = text;
              try {
                json = JSON.parse(text);
              } catch {
                // not JSON (metrics): the text itself
              }
              const status = res.statusCode ?? 0;
              if (status >= 400) {
                const e = (typeof json === 'object' && json !== null ? (json as { error?: { code?: string; message?: string; issues?: ApiIssue[] } }).error : undefined) ?? {};
                reject(new ControlPlaneCallError(status, e.code ?? `HTTP_${status}`, e.message ?? text.slice(0, 200), e.issues ?? []));
                return;
              }
              resolve({ status, body: json });
            });
          });
          req.on('timeout', () => req.destroy(new Error(`no answer from ${base.origin} within 30 s`)));
          req.on('error', reject);
          req.end(body?.text);
        }),
    };
  }
  throw lastError instanceof Error ? lastError : new Error('no control plane answered');
}
