/**
 * The mesh's own metadata entries, read and written without grpc-js's per-call validation. On the
 * hot path of a unary call the mesh touches a few entries it made itself (a `traceparent`,
 * `grpc-timeout`): `Metadata.set` checks key and value against regular
 * expressions on every call (~1.3 µs each, measured), `get` copies nothing but normalises the
 * key. These helpers go to grpc-js's map (`internalRepr`, protected in its typings, the same in
 * every 1.x) for keys that are lower-case constants and values the mesh formatted (hex ids,
 * `host:port`), and fall back to the public methods if the map is not there.
 *
 * Invariant: only for lower-case ASCII keys without `-bin` and values the mesh built itself;
 * anything from the application still goes through `Metadata.set`.
 */
import type { Metadata } from '@grpc/grpc-js';

type Values = (string | Buffer)[];

function entries(md: Metadata): Map<string, Values> | undefined {
  const m = (md as unknown as { internalRepr?: unknown }).internalRepr;
  return m instanceof Map ? (m as Map<string, Values>) : undefined;
}

/** Sets a mesh-made entry (replacing any value). */
export function setOwn(md: Metadata, key: string, value: string): void {
  const m = entries(md);
  if (m === undefined) md.set(key, value);
  else m.set(key, [value]);
}

/** Whether any of `keys` (lower-case) is present. */
export function hasAny(md: Metadata, keys: readonly string[]): boolean {
  const m = entries(md);
  if (m === undefined) return keys.some((k) => md.get(k).length > 0);
  if (m.size === 0) return false;
  for (const k of keys) if (m.has(k)) return true;
  return false;
}

/** Reads and removes a mesh-made entry's first string value. */
export function takeOwn(md: Metadata, key: string): string | undefined {
  const m = entries(md);
  const v = m === undefined ? md.get(key)[0] : m.get(key)?.[0];
  if (v === undefined) return undefined;
  if (m === undefined) md.remove(key);
  else m.delete(key);
  return typeof v === 'string' ? v : undefined;
}

/** The first string value of `key` (lower-case), without normalising it. */
export function firstOwn(md: Metadata, key: string): string | undefined {
  const m = entries(md);
  const v = m === undefined ? md.get(key)[0] : m.get(key)?.[0];
  return typeof v === 'string' ? v : undefined;
}
