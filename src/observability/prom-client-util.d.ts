/**
 * The one prom-client internal Trellis uses (request-series.ts): the key prom-client files a
 * labelled series under in a metric's `hashMap`. prom-client has no `exports` map, so the
 * module is reachable; a test compares Trellis's exposition with prom-client's own.
 */
declare module 'prom-client/lib/util.js' {
  export function hashObject(labels: Readonly<Record<string, string>>, sortedLabelNames?: readonly string[]): string;
}
