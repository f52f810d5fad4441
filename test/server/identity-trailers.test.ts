/**
 * Issue 13 item 10a: identity headers sent as trailers of a chunked request never reach the
 * application. Real chunked requests (from node:http's client and written by hand on a socket)
 * carry `x-forwarded-client-cert` and `x-trellis-*` trailers into the whole inbound stack; the
 * handler, reading `req.trailers`, `req.trailersDistinct` and `req.rawTrailers` when the body
 * ends, sees only the other trailers.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startStack } from './helpers.js';
import type { Stack } from './helpers.js';

interface SeenTrailers {
  trailers: http.IncomingHttpHeaders;
  distinct: Record<string, string[]>;
  raw: string[];
  body: string;
}

describe('identity trailers are stripped (issue 13 item 10a)', () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({
      mode: 'off',
      handler: (req, res) => {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => {
          const seen: SeenTrailers = { trailers: req.trailers, distinct: { ...req.trailersDistinct } as Record<string, string[]>, raw: [...req.rawTrailers], body };
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(seen));
        });
      },
    });
  });
  after(() => stack.close());

  it('node:http client: chunked body with forged identity trailers', async () => {
    const seen = await new Promise<SeenTrailers>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: stack.port, method: 'POST', path: '/', agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(JSON.parse(text) as SeenTrailers));
      });
      req.on('error', reject);
      req.setHeader('trailer', 'x-forwarded-client-cert, x-trellis-caller, x-trellis-timeout-ms, x-checksum');
      req.write('hello ');
      req.write('world');
      req.addTrailers({
        'x-forwarded-client-cert': 'URI=spiffe://example.org/svc/admin',
        'x-trellis-caller': 'admin',
        'x-trellis-timeout-ms': '1',
        'x-checksum': 'abc',
      });
      req.end();
    });
    assert.equal(seen.body, 'hello world');
    assert.deepEqual(seen.trailers, { 'x-checksum': 'abc' });
    assert.deepEqual(seen.distinct, { 'x-checksum': ['abc'] });
    assert.deepEqual(seen.raw, ['x-checksum', 'abc']);
  });

  it('hand-written chunked request: any case, repeated, the whole request in one write', async () => {
    const text = await new Promise<string>((resolve, reject) => {
      const c = net.connect(stack.port, '127.0.0.1', () =>
        c.end(
          'POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
            '5\r\nhello\r\n0\r\n' +
            'X-Forwarded-Client-Cert: URI=spiffe://example.org/svc/admin\r\nX-TRELLIS-PEER: admin\r\nx-trellis-caller: a\r\nx-trellis-caller: b\r\nX-Other: 1\r\n\r\n',
        ),
      );
      let out = '';
      c.setEncoding('utf8');
      c.on('data', (d: string) => (out += d));
      c.on('error', reject);
      c.on('close', () => resolve(out));
    });
    const seen = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as SeenTrailers;
    assert.equal(seen.body, 'hello');
    assert.deepEqual(seen.trailers, { 'x-other': '1' });
    assert.deepEqual(seen.distinct, { 'x-other': ['1'] });
    assert.deepEqual(seen.raw, ['X-Other', '1']);
  });
});
