/**
 * Identity from files the operator manages (`tls: { ca, cert, key }`): read and checked at
 * start, polled with `fs.watchFile` (non-persistent: it never keeps the process alive) and
 * reloaded when any of them changes.
 *
 * - A new file set that fails the checks (`material.ts`) keeps the previous material in force
 *   and warns, naming the file and the reason. Writers that replace cert and key one after the
 *   other are absorbed by a short debounce and by retrying on the next change.
 * - Warns once per certificate at two thirds of its life, and when it has expired (naming the
 *   file and its NotAfter); after expiry `current()` is undefined (fail closed).
 * - Never throws from the factory: unusable files at start make `ready()` reject with a
 *   ConfigInvalidError (or NoIdentityError when expired) naming the file, and watching goes on.
 */
import { readFileSync, unwatchFile, watchFile, type StatsListener } from 'node:fs';
import type { Clock } from '../core/clock.js';
import { ConfigInvalidError, NoIdentityError } from '../core/errors.js';
import { IdentityHolder } from './identity-holder.js';
import type { IdentityProvider } from './identity.js';
import { MaterialError, materialFromPem, type MaterialPart, type TlsMaterial } from './material.js';

export interface FileIdentityPaths {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

export interface FileIdentityDeps {
  readonly clock: Clock;
  readonly onWarn: (message: string) => void;
  /** How often files are polled and lifetimes checked; default 2000 ms. */
  readonly pollMs?: number;
  /**
   * What the certificate must be: the mesh's trust domain and this instance's service. Files
   * for anything else are refused like any bad file. Default: whatever SVID the files hold.
   */
  readonly expect?: { readonly trustDomain?: string; readonly service?: string };
}

const DEFAULT_POLL_MS = 2000;
/** Lets a writer replace cert and key before we read them. */
const DEBOUNCE_MS = 50;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/**
 * Watches `paths` and serves their material.
 *
 * @example
 * const id = fileIdentity({ ca: 'ca.pem', cert: 'svc.pem', key: 'svc.key' }, { clock: systemClock, onWarn: log.warn });
 * const material = await id.ready();
 * id.on('rotated', (m) => server.setSecureContext({ ca: m.ca, cert: m.cert, key: m.key }));
 */
export function fileIdentity(paths: FileIdentityPaths, deps: FileIdentityDeps): IdentityProvider {
  const { clock, onWarn } = deps;
  const pollMs = Math.max(10, deps.pollMs ?? DEFAULT_POLL_MS);
  let debounce: NodeJS.Timeout | undefined;
  let warnedAging = false;
  let warnedExpired = false;

  const holder = new IdentityHolder(clock, onWarn, () => {
    for (const p of watched) unwatchFile(p, onChange);
    clearInterval(lifeTimer);
    if (debounce !== undefined) clearTimeout(debounce);
  });

  const describe = (m: TlsMaterial): string => `certificate ${paths.cert} (${m.spiffeId})`;

  const checkLife = (): void => {
    const m = holder.latest();
    if (m === undefined) return;
    const now = clock.wall();
    if (now >= m.notAfter) {
      if (!warnedExpired) {
        warnedExpired = true;
        onWarn(`${describe(m)} expired at ${iso(m.notAfter)} (NotAfter); new mTLS connections fail closed until it is replaced`);
      }
    } else if (now >= m.notBefore + ((m.notAfter - m.notBefore) * 2) / 3 && !warnedAging) {
      warnedAging = true;
      onWarn(`${describe(m)} has passed two thirds of its life; it expires at ${iso(m.notAfter)} (NotAfter): replace it`);
    }
  };

  const load = (initial: boolean): void => {
    let part: MaterialPart = 'ca';
    let material: TlsMaterial;
    try {
      const ca = readFileSync(paths.ca, 'utf8');
      part = 'cert';
      const cert = readFileSync(paths.cert, 'utf8');
      part = 'key';
      const key = readFileSync(paths.key, 'utf8');
      const prev = holder.latest();
      if (prev !== undefined && prev.ca === ca && prev.cert === cert && prev.key === key) return;
      material = materialFromPem({ ca, cert, key }, deps.expect);
    } catch (err) {
      const where = err instanceof MaterialError ? err.part : part;
      const file = paths[where];
      const reason = err instanceof MaterialError ? err.message : `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
      const prev = holder.latest();
      if (prev !== undefined) {
        onWarn(`${file}: ${reason}; keeping the previous certificate (${prev.spiffeId}, NotAfter ${iso(prev.notAfter)})`);
      } else if (initial) {
        // ready() rejects with this; a warning as well would report the same problem twice.
        holder.fail(new ConfigInvalidError([{ file, document: 0, path: '', message: reason }], { cause: err }));
      } else {
        onWarn(`${file}: ${reason}; no workload identity until it is fixed`);
      }
      return;
    }
    warnedAging = false;
    warnedExpired = false;
    holder.set(material);
    if (clock.wall() >= material.notAfter && holder.current() === undefined) {
      holder.fail(new NoIdentityError(`${describe(material)} expired at ${iso(material.notAfter)} (NotAfter)`));
    }
    checkLife();
  };

  const onChange: StatsListener = () => {
    if (holder.closed) return;
    if (debounce !== undefined) clearTimeout(debounce);
    debounce = setTimeout(() => {
      debounce = undefined;
      if (!holder.closed) load(false);
    }, DEBOUNCE_MS);
    debounce.unref();
  };

  const watched = [...new Set([paths.ca, paths.cert, paths.key])];
  for (const p of watched) watchFile(p, { persistent: false, interval: pollMs }, onChange);
  const lifeTimer = setInterval(checkLife, pollMs);
  lifeTimer.unref();
  load(true);
  return holder;
}
