/**
 * Static endpoint address parsing and the SSRF policy of RELIABILITY.md: unspecified,
 * link-local (cloud metadata), multicast and broadcast addresses are refused, including when
 * an IPv6 address carries them; loopback and private addresses are allowed.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsServerProblem, isAuthority, isDnsName, parseEndpointAddress } from '../../src/config/address.js';

test('accepted endpoint addresses', () => {
  assert.deepEqual(parseEndpointAddress('127.0.0.1:8081'), { host: '127.0.0.1', port: 8081 });
  assert.deepEqual(parseEndpointAddress('[::1]:8081'), { host: '::1', port: 8081 });
  assert.deepEqual(parseEndpointAddress('10.1.2.3:65535'), { host: '10.1.2.3', port: 65535 });
  assert.deepEqual(parseEndpointAddress('[fd00::5]:1'), { host: 'fd00::5', port: 1 });
  assert.deepEqual(parseEndpointAddress('localhost:80'), { host: 'localhost', port: 80 });
});

test('refused endpoint addresses', () => {
  const refused: [string, RegExp][] = [
    ['0.0.0.0:80', /unspecified/],
    ['0.1.2.3:80', /unspecified/],
    ['[::]:80', /unspecified/],
    ['169.254.169.254:80', /link-local/],
    ['[fe80::1]:80', /link-local/],
    ['[febf::1]:80', /link-local/],
    ['224.0.0.251:5353', /multicast/],
    ['239.255.255.250:1900', /multicast/],
    ['[ff02::1]:80', /multicast/],
    ['255.255.255.255:80', /broadcast/],
    ['[fd00:ec2::254]:80', /metadata/],
    ['[::ffff:169.254.169.254]:80', /carries an IPv4 address that is link-local/],
    ['[::ffff:a9fe:a9fe]:80', /carries an IPv4 address that is link-local/],
    ['[64:ff9b::a9fe:a9fe]:80', /carries an IPv4 address that is link-local/],
    ['[::ffff:0.0.0.0]:80', /carries an IPv4 address that is unspecified/],
    ['127.0.0.1', /missing the port/],
    ['127.0.0.1:0', /port "0"/],
    ['127.0.0.1:99999', /port "99999"/],
    ['127.0.0.1:8o', /port "8o"/],
    ['::1:80', /need brackets/],
    ['[nope]:80', /not an IPv6 address/],
    ['metadata.google.internal:80', /not an IP address/],
    ['1.2.3:80', /not an IP address/],
  ];
  for (const [address, reason] of refused) {
    const result = parseEndpointAddress(address);
    assert.equal(typeof result, 'string', address);
    assert.match(String(result), reason, address);
  }
  assert.equal(typeof parseEndpointAddress('[fec0::1]:80'), 'object', 'fec0::/10 is not link-local');
});

test('DNS names, DNS servers and authorities', () => {
  assert.ok(isDnsName('products.shop.svc'));
  assert.ok(isDnsName('_http._tcp.products.shop.svc.'));
  assert.ok(!isDnsName('bad name'));
  assert.ok(!isDnsName(`${'a'.repeat(64)}.com`));
  assert.ok(!isDnsName('-a.b'));
  assert.equal(dnsServerProblem('127.0.0.1:5353'), undefined);
  assert.equal(dnsServerProblem('[::1]:53'), undefined);
  assert.equal(dnsServerProblem('::1'), undefined);
  assert.equal(dnsServerProblem('8.8.8.8'), undefined);
  assert.match(dnsServerProblem('dns.google:53') ?? '', /not an IP address/);
  assert.match(dnsServerProblem('127.0.0.1:0') ?? '', /port/);
  assert.ok(isAuthority('products.internal'));
  assert.ok(isAuthority('products.internal:8443'));
  assert.ok(isAuthority('[::1]:80'));
  assert.ok(!isAuthority('a b'));
  assert.ok(!isAuthority('host:port'));
});
