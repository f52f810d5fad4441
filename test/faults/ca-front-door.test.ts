/**
 * The fault matrix, CA front-door rows B6-B8 (RELIABILITY §4): until the control plane exists
 * (issue 9), `signCsr` is served over HTTP by signer-process.ts in its own process, and the
 * test talks to it as a workload would: hostile CSRs and tokens go in, and what counts is what
 * the signer answered (typed codes), what it issued (its own count) and that it stays up.
 */
import { before, after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign as cryptoSign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAuthority, createToken, generateTokenKey, saveAuthority } from 'trellis';
import type { Authority, Clock } from 'trellis';
import { saveTokenKey } from '../../src/tls/authority-files.js';
import { buildCsr } from '../../src/tls/csr.js';
import { generateP256KeyPair } from '../../src/tls/keys.js';
import { pemEncode, splitCertificates } from '../../src/tls/pem.js';
import { startProcessServer } from '../helpers/processes.js';
import type { ProcessServer } from '../helpers/processes.js';
import { greedyCsr, nestedDer } from '../tls/csr-fixtures.js';
import { ms, percentile } from './helpers.js';

const TD = 'example.org';
const HOUR = 3_600_000;
const clock: Clock = { now: () => performance.now(), wall: () => Date.now() };
const skewed = (offsetMs: number): Clock => ({ now: () => performance.now(), wall: () => Date.now() + offsetMs });

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('fault matrix: the CA front door in its own process (B6-B8)', () => {
  let ca: Authority;
  let tokenKey: KeyObject;
  let signer: ProcessServer;
  let url: string;
  const sign = async (body: unknown): Promise<{ status: number; json: { code?: string; message?: string; certificateChainPem?: string } }> => {
    const r = await fetch(`${url}/sign`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    return { status: r.status, json: (await r.json()) as { code?: string } };
  };
  const stats = async (): Promise<{ issued: number; refused: number }> => (await (await fetch(`${url}/stats`)).json()) as { issued: number; refused: number };
  const token = (service = 'checkout', c: Clock = clock, ttlMs = 600_000): string => createToken(tokenKey, { service, ttlMs }, c);
  let goodCsr: string;

  before(async () => {
    [ca, tokenKey] = await Promise.all([createAuthority({ trustDomain: TD }, clock), generateTokenKey()]);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-signer-'));
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
    await saveAuthority(ca, dir);
    await saveTokenKey(tokenKey, dir);
    signer = await startProcessServer('signer', { script: fileURLToPath(new URL('./signer-process.ts', import.meta.url)), args: [dir] });
    cleanup.push(() => signer.kill());
    url = `http://127.0.0.1:${signer.port}`;
    goodCsr = buildCsr(await generateP256KeyPair(), 'checkout');
  });

  const validLatencies = async (n: number): Promise<number[]> => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const r = await sign({ token: token(), csrPem: goodCsr });
      assert.equal(r.status, 200);
      out.push(performance.now() - t0);
    }
    return out;
  };

  it('B6: bad CSRs (garbage, 1 MiB, deep DER, bad self-signature, RSA-1024, e=3): 400 TRELLIS_CSR_INVALID, signer stays up', async (t) => {
    const base = await validLatencies(10);
    const der = Buffer.from(goodCsr.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] as number) ^ 0x01;
    const bad: [string, string][] = [
      ['garbage', 'hello, CA'],
      ['1 MiB', pemEncode('CERTIFICATE REQUEST', Buffer.alloc(1024 * 1024, 0x41))],
      ['10k-deep DER', pemEncode('CERTIFICATE REQUEST', nestedDer(10_000))],
      ['2.5k-deep DER (under the size cap)', pemEncode('CERTIFICATE REQUEST', nestedDer(2500))],
      ['bad self-signature', pemEncode('CERTIFICATE REQUEST', der)],
      ['RSA-1024', buildCsr(generateKeyPairSync('rsa', { modulusLength: 1024 }), 'x')],
      ['RSA-2048 e=3', buildCsr(generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }), 'x')],
    ];
    const s0 = await stats();
    const rows: string[] = [];
    const wrong: string[] = [];
    for (const [name, csrPem] of bad) {
      const t0 = performance.now();
      const r = await sign({ token: token(), csrPem });
      const took = performance.now() - t0;
      rows.push(`${name}: ${r.status} ${r.json.code} in ${took.toFixed(1)} ms`);
      if (r.status !== 400 || r.json.code !== 'TRELLIS_CSR_INVALID') wrong.push(`${name}: ${r.status} ${r.json.code} ${r.json.message}`);
    }
    const s1 = await stats();
    const afterLat = await validLatencies(10);
    for (const row of rows) t.diagnostic(`B6 ${row}`);
    t.diagnostic(`B6 signer alive: ${signer.child.exitCode === null}; certificates issued for bad CSRs: ${s1.issued - s0.issued}; valid-CSR p99 before ${ms(percentile(base, 99))}, after ${ms(percentile(afterLat, 99))}`);
    assert.deepEqual(wrong, []);
    assert.equal(s1.issued - s0.issued, 0);
    assert.equal(signer.child.exitCode, null, 'the signer is still up');
  });

  it('B7: bad tokens (expired, other service, wrong audience, tampered): 401 TRELLIS_TOKEN_INVALID, no certificate', async (t) => {
    const iat = Math.floor(Date.now() / 1000);
    const [h, , sig] = token().split('.') as [string, string, string];
    const audClaims = Buffer.from(JSON.stringify({ aud: 'other', sub: 'checkout', iat, exp: iat + 60, jti: 'j1' })).toString('base64url');
    const wrongAud = `${h}.${audClaims}.${cryptoSign(null, Buffer.from(`${h}.${audClaims}`), tokenKey).toString('base64url')}`;
    const forged = Buffer.from(JSON.stringify({ aud: 'trellis-ca', sub: 'payments', iat, exp: iat + 600, jti: 'j2' })).toString('base64url');
    const cases: [string, Record<string, string>][] = [
      ['expired', { token: token('checkout', skewed(-2 * HOUR), 60_000), csrPem: goodCsr }],
      ['other service', { token: token('payments'), csrPem: goodCsr, service: 'checkout' }],
      ['wrong audience', { token: wrongAud, csrPem: goodCsr }],
      ['tampered claims', { token: `${h}.${forged}.${sig}`, csrPem: goodCsr }],
      ['missing', { token: '', csrPem: goodCsr }],
    ];
    const s0 = await stats();
    const rows: string[] = [];
    const wrong: string[] = [];
    for (const [name, body] of cases) {
      const r = await sign(body);
      rows.push(`${name}: ${r.status} ${r.json.code}`);
      if (r.status !== 401 || r.json.code !== 'TRELLIS_TOKEN_INVALID' || r.json.certificateChainPem !== undefined) wrong.push(`${name}: ${r.status} ${r.json.code}`);
    }
    const s1 = await stats();
    t.diagnostic(`B7 ${rows.join('; ')}; certificates issued ${s1.issued - s0.issued}`);
    assert.deepEqual(wrong, []);
    assert.equal(s1.issued - s0.issued, 0);
  });

  it('B8: a CSR claiming another identity (SAN payments, DNS SAN, CA:true, keyCertSign) gets only the token identity, CA=false', async (t) => {
    const r = await sign({ token: token('checkout'), csrPem: greedyCsr(await generateP256KeyPair()) });
    assert.equal(r.status, 200);
    const leaf = new X509Certificate(splitCertificates(r.json.certificateChainPem ?? '')[0] as string);
    t.diagnostic(`B8 issued: subject ${leaf.subject}, SAN ${leaf.subjectAltName}, CA=${leaf.ca}`);
    assert.equal(leaf.subjectAltName, `URI:spiffe://${TD}/svc/checkout`);
    assert.equal(leaf.ca, false);
    assert.equal(leaf.subject, 'CN=checkout');
  });
});
