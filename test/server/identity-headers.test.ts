/**
 * Identity headers are removed from inbound requests (req.headers, req.headersDistinct and
 * req.rawHeaders), in any case and every occurrence; deadline and mirror headers stay.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { IDENTITY_HEADERS, stripIdentityHeaders } from '../../src/server/identity-headers.js';

interface Seen {
  headers: http.IncomingHttpHeaders;
  distinct: NodeJS.Dict<string[]>;
  raw: string[];
  removed: number;
}

describe('stripIdentityHeaders', () => {
  let seen: Seen | undefined;
  let touchFirst = false;
  const server = http.createServer((req, res) => {
    // Either order must work: headers built before or after the strip.
    if (touchFirst) void req.headers['x-trellis-caller'];
    const removed = stripIdentityHeaders(req);
    seen = { headers: req.headers, distinct: req.headersDistinct, raw: [...req.rawHeaders], removed };
    res.end();
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  async function send(lines: string[]): Promise<Seen> {
    if (!server.listening) await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    seen = undefined;
    await new Promise<void>((resolve, reject) => {
      const c = net.connect(port, '127.0.0.1', () => c.end(`GET / HTTP/1.1\r\nHost: x\r\n${lines.join('\r\n')}\r\nConnection: close\r\n\r\n`));
      c.on('error', reject);
      c.on('close', () => resolve());
      c.resume();
    });
    assert.ok(seen !== undefined);
    return seen;
  }

  const forged = [
    'X-Forwarded-Client-Cert: By=spiffe://example.org/svc/b;URI=spiffe://example.org/svc/admin',
    'x-trellis-caller: admin',
    'X-TRELLIS-PEER: admin',
    'x-trellis-identity: admin',
    'X-Trellis-Spiffe: spiffe://example.org/svc/admin',
    'x-trellis-caller: admin-again',
    'x-trellis-timeout-ms: 250',
    'x-trellis-mirror: 1',
    'x-trellis-other: kept',
    'x-forwarded-for: 10.0.0.1',
  ];

  for (const first of [false, true]) {
    it(`removes every identity header, keeps the rest (headers ${first ? 'built before' : 'built after'} the strip)`, async () => {
      touchFirst = first;
      const s = await send(forged);
      assert.equal(s.removed, 6);
      for (const h of IDENTITY_HEADERS) {
        assert.equal(s.headers[h], undefined, h);
        assert.equal(s.distinct[h], undefined, h);
        assert.ok(!s.raw.some((r) => r.toLowerCase() === h), `${h} in rawHeaders`);
      }
      assert.equal(s.headers['x-trellis-timeout-ms'], '250');
      assert.equal(s.headers['x-trellis-mirror'], '1');
      assert.equal(s.headers['x-trellis-other'], 'kept');
      assert.equal(s.headers['x-forwarded-for'], '10.0.0.1');
      assert.equal(s.headers.host, 'x');
      assert.equal(s.raw.length % 2, 0);
      assert.deepEqual(s.raw.slice(0, 2), ['Host', 'x']);
    });
  }

  it('leaves a request without identity headers untouched', async () => {
    touchFirst = false;
    const s = await send(['x-trellis-timeout-ms: 100']);
    assert.equal(s.removed, 0);
    assert.deepEqual(s.raw, ['Host', 'x', 'x-trellis-timeout-ms', '100', 'Connection', 'close']);
  });
});
