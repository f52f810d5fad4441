/**
 * Address syntax and policy for config: static endpoint addresses (`127.0.0.1:8081`,
 * `[::1]:8081`), DNS names, DNS server addresses and authorities. Used by the schema, and by
 * DNS discovery, which holds every answered address to the same policy (dns-resolve.ts).
 *
 * The policy follows docs/security.md ("SSRF through routing data", after Kubernetes
 * CVE-2021-25737): a static endpoint may not be unspecified (0.0.0.0/8, ::), link-local
 * (169.254.0.0/16 — which holds the cloud metadata service — fe80::/10), multicast or broadcast,
 * nor the AWS IPv6 metadata address; an IPv4 address embedded in IPv6 (::ffff:a.b.c.d, NAT64) is
 * judged as the IPv4 address it carries. Loopback and private ranges stay allowed: they are how
 * meshes on one machine or one network are built.
 *
 * Static endpoints are IP literals (or `localhost`): a name would be resolved later, past this
 * check, which is what `dns:` endpoints are for.
 */

import { isIPv4, isIPv6 } from 'node:net';

export interface HostPort {
  /** IPv4, IPv6 without brackets, or `localhost`. */
  host: string;
  port: number;
}

/** Parses a port written as text; undefined unless it is 1..65535. */
export function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

/** Parses `host:port` for a static endpoint; returns the parts or a reason it is refused. */
export function parseEndpointAddress(text: string): HostPort | string {
  let host: string;
  let portText: string;
  const bracketed = /^\[([^\]]*)\]:([^:]*)$/.exec(text);
  if (bracketed !== null) {
    host = bracketed[1] ?? '';
    portText = bracketed[2] ?? '';
    if (!isIPv6(host)) return `"${host}" is not an IPv6 address`;
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) return 'missing the port (write host:port, e.g. 127.0.0.1:8081)';
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':')) return 'IPv6 addresses need brackets (e.g. [::1]:8081)';
    if (!isIPv4(host) && host !== 'localhost') {
      return `"${host}" is not an IP address (static endpoints are IP addresses; use dns: for names)`;
    }
  }
  const port = parsePort(portText);
  if (port === undefined) return `port "${portText}" is not 1..65535`;
  const refused = refusedAddressReason(host);
  if (refused !== undefined) return refused;
  return { host, port };
}

/** Why an IP address may not be a static endpoint, or undefined when it may. */
export function refusedAddressReason(host: string): string | undefined {
  if (isIPv4(host)) return refusedIPv4(ipv4Octets(host));
  if (!isIPv6(host)) return undefined;
  const g = ipv6Groups(host);
  if (g === undefined) return 'is not a valid IPv6 address';
  if (g.every((x) => x === 0)) return 'is unspecified (::) and names no host';
  if (((g[0] ?? 0) & 0xffc0) === 0xfe80) return 'is link-local (fe80::/10)';
  if (((g[0] ?? 0) & 0xff00) === 0xff00) return 'is multicast (ff00::/8)';
  // fd00:ec2::254, the AWS instance metadata service over IPv6.
  if (g[0] === 0xfd00 && g[1] === 0x0ec2 && g.slice(2, 7).every((x) => x === 0) && g[7] === 0x254) {
    return 'is the cloud metadata address (fd00:ec2::254)';
  }
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  const compat = g.slice(0, 6).every((x) => x === 0);
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  if (mapped || nat64 || (compat && !(g[6] === 0 && g[7] === 1))) {
    const hi = g[6] ?? 0;
    const lo = g[7] ?? 0;
    const reason = refusedIPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
    return reason === undefined ? undefined : `carries an IPv4 address that ${reason}`;
  }
  return undefined;
}

function refusedIPv4(o: number[]): string | undefined {
  const [a = 0, b = 0, c = 0, d = 0] = o;
  if (a === 0) return 'is unspecified (0.0.0.0/8) and names no host';
  if (a === 169 && b === 254) return 'is link-local (169.254.0.0/16, where cloud metadata services live)';
  if (a >= 224 && a <= 239) return 'is multicast (224.0.0.0/4)';
  if (a === 255 && b === 255 && c === 255 && d === 255) return 'is the broadcast address';
  return undefined;
}

function ipv4Octets(text: string): number[] {
  return text.split('.').map((x) => Number(x));
}

/** The eight 16-bit groups of an IPv6 address (already checked with `isIPv6`). */
function ipv6Groups(text: string): number[] | undefined {
  const zone = text.indexOf('%');
  const addr = zone >= 0 ? text.slice(0, zone) : text;
  const toGroups = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        if (!isIPv4(piece)) return undefined;
        const [a = 0, b = 0, c = 0, d = 0] = ipv4Octets(piece);
        out.push((a << 8) | b, (c << 8) | d);
      } else {
        out.push(Number.parseInt(piece, 16));
      }
    }
    return out;
  };
  const halves = addr.split('::');
  if (halves.length > 2) return undefined;
  const head = toGroups(halves[0] ?? '');
  const tail = halves.length === 2 ? toGroups(halves[1] ?? '') : [];
  if (head === undefined || tail === undefined) return undefined;
  const fill = 8 - head.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  return [...head, ...new Array<number>(fill).fill(0), ...tail];
}

const DNS_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** A DNS name: dot-separated labels of letters, digits, `-` and `_` (SRV), 253 characters at most. */
export function isDnsName(name: string): boolean {
  const bare = name.endsWith('.') ? name.slice(0, -1) : name;
  if (bare.length === 0 || bare.length > 253) return false;
  return bare.split('.').every((label) => DNS_LABEL.test(label));
}

/** A DNS server: an IP address with an optional port (`127.0.0.1:5353`, `[::1]:53`, `::1`). */
export function dnsServerProblem(text: string): string | undefined {
  if (isIPv4(text) || isIPv6(text)) return undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed !== null) {
    if (!isIPv6(bracketed[1] ?? '')) return 'is not an IPv6 address';
    if (bracketed[2] !== undefined && parsePort(bracketed[2]) === undefined) return 'has a port outside 1..65535';
    return undefined;
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0 || !isIPv4(text.slice(0, colon))) return 'is not an IP address with an optional port';
  return parsePort(text.slice(colon + 1)) === undefined ? 'has a port outside 1..65535' : undefined;
}

/** An HTTP authority for rewrites: `host` or `host:port`, host a DNS name or IP literal. */
export function isAuthority(text: string): boolean {
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed !== null) {
    return isIPv6(bracketed[1] ?? '') && (bracketed[2] === undefined || parsePort(bracketed[2]) !== undefined);
  }
  const colon = text.lastIndexOf(':');
  const host = colon < 0 ? text : text.slice(0, colon);
  if (colon >= 0 && parsePort(text.slice(colon + 1)) === undefined) return false;
  return isIPv4(host) || isDnsName(host);
}
