/**
 * A stand-in CA front door in its own process, for rows B6-B8: until the control plane exists
 * (issue 9), this is what serves `signCsr` over HTTP on 127.0.0.1. It loads the CA and the
 * token key from DIR (written by the test with saveAuthority / saveTokenKey), answers
 * `POST /sign` `{ token, csrPem, service? }` with 200 `{ certificateChainPem }` or the error's
 * HTTP status and `{ code, message }`, and `GET /stats` with what it issued and refused.
 * Bodies over 2 MiB are cut off with 413. Prints `PORT <n>` once listening.
 * Usage: node --import tsx signer-process.ts NAME DIR
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../../src/core/clock.js';
import { ERROR_CODES, isTrellisError } from '../../src/core/errors.js';
import { loadAuthority, loadTokenKey } from '../../src/tls/authority-files.js';
import { signCsr } from '../../src/tls/signer.js';

const dir = process.argv[3] ?? '.';
const issuer = await loadAuthority(dir);
const tokenKey = await loadTokenKey(dir);
const stats = { issued: 0, refused: 0 };

const server = http.createServer((req, res) => {
  if (req.method === 'GET') {
    res.end(JSON.stringify(stats));
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size > 2 * 1024 * 1024) {
      res.statusCode = 413;
      res.end();
      req.destroy();
      return;
    }
    chunks.push(c);
  });
  req.on('end', () => {
    try {
      const body = JSON.parse(Buffer.concat(chunks).toString()) as { token: string; csrPem: string; service?: string };
      const r = signCsr(body, { issuer, tokenKey, ttlMs: 3_600_000, clock: systemClock });
      stats.issued++;
      res.end(JSON.stringify({ certificateChainPem: r.certificateChainPem }));
    } catch (err) {
      stats.refused++;
      const code = isTrellisError(err) ? err.code : 'UNTYPED';
      res.statusCode = isTrellisError(err) ? ERROR_CODES[err.code].httpStatus : 500;
      res.end(JSON.stringify({ code, message: (err as Error).message }));
    }
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${(server.address() as AddressInfo).port}\n`);
});
