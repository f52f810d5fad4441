/**
 * How a CLI command talks to the control plane as the admin: the URL from `--control-plane` or
 * TRELLIS_CONTROL_PLANE, the admin token from `--admin-token VALUE|@FILE` or TRELLIS_ADMIN_TOKEN,
 * and the control plane verified through the CA pin the token carries (its trust bundle is
 * fetched once, accepted only if an anchor matches the pin, then every request verifies the
 * control plane's certificate against it). No CA file is needed anywhere.
 */
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { fetchTrustBundle, pinOfToken } from '../controlplane-client/pin.js';
import { optionalString } from './args.js';
import { UsageError, type CliIo, type OptionValues } from './command.js';

/** The options every admin command takes (spread into its `options`). */
export const ADMIN_OPTIONS = {
  'control-plane': { type: 'string' },
  'admin-token': { type: 'string' },
} as const;

export const ADMIN_HELP: readonly string[] = [
  '--control-plane URL     the control plane (default: $TRELLIS_CONTROL_PLANE)',
  '--admin-token VALUE     the admin token, or @FILE to read it (default: $TRELLIS_ADMIN_TOKEN)',
];

/** The control plane answered with an error body (`{ error: { code, message } }`) or no JSON. */
export class ControlPlaneRequestError extends Error {
  readonly code: string;
  readonly status: number;
  constructor(code: string, status: number, message: string) {
    super(message);
    this.name = 'ControlPlaneRequestError';
    this.code = code;
    this.status = status;
  }
}

export interface AdminClient {
  readonly url: string;
  /** GET a JSON resource (`/v1/stat?window=1m`). */
  get(path: string): Promise<unknown>;
}

const MAX_BODY = 16 << 20;

async function tokenOf(values: OptionValues, io: CliIo): Promise<string> {
  const raw = optionalString(values, 'admin-token') ?? io.env.TRELLIS_ADMIN_TOKEN;
  if (raw === undefined || raw === '') throw new UsageError('no admin token: pass --admin-token VALUE|@FILE or set TRELLIS_ADMIN_TOKEN (the control plane wrote it to DIR/admin-token)');
  if (!raw.startsWith('@')) return raw.trim();
  try {
    return (await readFile(raw.slice(1), 'utf8')).trim();
  } catch (err) {
    throw new UsageError(`--admin-token ${raw.slice(0, 200)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function urlOf(values: OptionValues, io: CliIo): string {
  const raw = optionalString(values, 'control-plane') ?? io.env.TRELLIS_CONTROL_PLANE;
  if (raw === undefined || raw === '') throw new UsageError('no control plane: pass --control-plane URL or set TRELLIS_CONTROL_PLANE (e.g. https://127.0.0.1:7400)');
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new UsageError(`--control-plane "${raw.slice(0, 200)}" is not a URL (e.g. https://127.0.0.1:7400)`);
  }
  if (u.protocol !== 'https:') throw new UsageError(`--control-plane ${raw.slice(0, 200)}: the control plane is HTTPS only`);
  return u.origin;
}

/** An admin client for the command line's control plane and token (the bundle fetched on first use). */
export async function adminClient(values: OptionValues, io: CliIo): Promise<AdminClient> {
  const url = urlOf(values, io);
  const token = await tokenOf(values, io);
  const pin = pinOfToken(token);
  let bundle: Promise<string> | undefined;
  return {
    url,
    async get(path) {
      bundle ??= fetchTrustBundle(url, pin).then((b) => b.bundlePem);
      const ca = await bundle.catch((err: unknown) => {
        bundle = undefined; // try again on the next call (--watch)
        throw err;
      });
      const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = https.get(new URL(path, url), { ca, headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, timeout: 10_000 }, (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_BODY) req.destroy(new Error('answer larger than 16 MiB'));
            else chunks.push(c);
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        });
        req.on('timeout', () => req.destroy(new Error('no answer in 10 s')));
        req.on('error', reject);
      });
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new ControlPlaneRequestError('TRELLIS_UPSTREAM_ERROR', status, `control plane ${url}${path} answered ${status} with something that is not JSON`);
      }
      if (status !== 200) {
        const e = (body as { error?: { code?: unknown; message?: unknown } }).error;
        throw new ControlPlaneRequestError(typeof e?.code === 'string' ? e.code : 'TRELLIS_UPSTREAM_ERROR', status, typeof e?.message === 'string' ? e.message : `control plane answered ${status}`);
      }
      return body;
    },
  };
}
