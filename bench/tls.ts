/**
 * `node --import tsx bench/tls.ts`: what workload certificates cost, to choose the key type and
 * the certificate library on numbers (docs/identity.md).
 *
 * Issuance, per certificate, three contenders:
 *   rsa-forge     RSA-2048 keys from node:crypto; node-forge builds and signs the CSR and the
 *                 leaf (CA keys RSA-2048 too: forge has no ECDSA)
 *   p256-x509     ECDSA P-256 with @peculiar/x509 over Node's WebCrypto (needs the global
 *                 `reflect-metadata` polyfill, imported here only)
 *   p256-trellis  ECDSA P-256, what src/tls ships: @peculiar/asn1-* schemas, node:crypto signs
 * Phases: keygen, CSR build, sign (the CA side: parse + verify the CSR, build + sign the leaf).
 *
 * TLS 1.3 handshakes, mutual TLS, full handshakes (no resumption), a 3-level chain (anchor →
 * issuer → leaf) of RSA-2048 or of P-256: a `tls` server in a child process (so its CPU is
 * measured apart), clients in this process at concurrency 1 and 16 for a fixed time each,
 * with our SPIFFE `checkServerIdentity` and one secure context shared by all connections (plus
 * one cell passing PEM per connection, to show what not sharing it costs). Reported:
 * handshakes/s and CPU ms per handshake on each side.
 *
 * Bounded: about 40 s; a watchdog ends everything (child included) after 120 s.
 * Usage: node --import tsx bench/tls.ts [--seconds S] [--iterations N] [--json]
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPair, randomBytes, webcrypto } from 'node:crypto';
import { once } from 'node:events';
import os from 'node:os';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import * as x509 from '@peculiar/x509';
import forge from 'node-forge';
import { systemClock } from '../src/core/clock.js';
import { createAuthority, issueLeaf } from '../src/tls/authority.js';
import { buildCsr, parseCsr } from '../src/tls/csr.js';
import { generateP256KeyPair, privateKeyPem } from '../src/tls/keys.js';
import { checkServerIdentityFor, peerIdentity } from '../src/tls/spiffe.js';
import { createToken, generateTokenKey, verifyToken } from '../src/tls/tokens.js';

const generateKeyPairAsync = promisify(generateKeyPair);
const TD = 'bench.local';

interface Material {
  ca: string;
  cert: string;
  key: string;
}

// ---------------------------------------------------------------- server child

async function serve(): Promise<void> {
  const [msg] = (await once(process, 'message')) as [Material];
  let cpu0 = process.cpuUsage();
  const server = tls.createServer({ ...msg, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' }, (socket) => {
    peerIdentity(socket, TD); // the inbound identity read is part of the server's cost
    socket.end();
  });
  server.on('tlsClientError', () => {});
  server.listen(0, '127.0.0.1', () => process.send?.({ port: (server.address() as { port: number }).port }));
  process.on('message', (m: { cmd: string }) => {
    if (m.cmd === 'start') cpu0 = process.cpuUsage();
    if (m.cmd === 'stop') {
      const d = process.cpuUsage(cpu0);
      process.send?.({ cpuUs: d.user + d.system });
    }
    if (m.cmd === 'exit') server.close(() => process.exit(0));
  });
  process.on('disconnect', () => process.exit(0));
}

// ---------------------------------------------------------------- timing helpers

interface Stat {
  meanMs: number;
  p50Ms: number;
}

async function timeOp(n: number, fn: () => Promise<unknown> | unknown): Promise<Stat> {
  for (let i = 0; i < Math.min(3, n); i++) await fn();
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await fn();
    t.push(performance.now() - s);
  }
  t.sort((a, b) => a - b);
  return { meanMs: t.reduce((a, b) => a + b, 0) / n, p50Ms: t[Math.floor(n / 2)] as number };
}

// ---------------------------------------------------------------- rsa + forge

const FORGE_LEAF_EXTS = (uri: string) => [
  { name: 'basicConstraints', cA: false, critical: true },
  { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
  { name: 'extKeyUsage', serverAuth: true, clientAuth: true },
  { name: 'subjectAltName', altNames: [{ type: 6, value: uri }] },
];

async function rsaPems(): Promise<{ pub: string; priv: string }> {
  const kp = await generateKeyPairAsync('rsa', { modulusLength: 2048, publicExponent: 65537 });
  return { pub: kp.publicKey.export({ type: 'spki', format: 'pem' }) as string, priv: kp.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

function forgeCert(opts: { pubPem: string; subjectCN: string; issuer: forge.pki.Certificate | undefined; signKeyPem: string; ca: boolean; pathLen?: number; uri: string }): forge.pki.Certificate {
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(opts.pubPem);
  cert.serialNumber = '40' + randomBytes(15).toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60_000);
  cert.validity.notAfter = new Date(now + (opts.ca ? 365 : 1) * 86_400_000);
  const subject = [{ name: 'commonName', value: opts.subjectCN }];
  cert.setSubject(subject);
  cert.setIssuer(opts.issuer ? opts.issuer.subject.attributes : subject);
  cert.setExtensions(
    opts.ca
      ? [
          { name: 'basicConstraints', cA: true, pathLenConstraint: opts.pathLen, critical: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
          { name: 'subjectKeyIdentifier' },
          { name: 'subjectAltName', altNames: [{ type: 6, value: opts.uri }] },
        ]
      : FORGE_LEAF_EXTS(opts.uri),
  );
  cert.sign(forge.pki.privateKeyFromPem(opts.signKeyPem), forge.md.sha256.create());
  return cert;
}

async function rsaAuthority(): Promise<{ anchor: forge.pki.Certificate; issuer: forge.pki.Certificate; issuerKey: string; bundle: string }> {
  const a = await rsaPems();
  const anchor = forgeCert({ pubPem: a.pub, subjectCN: 'rsa anchor', issuer: undefined, signKeyPem: a.priv, ca: true, pathLen: 1, uri: `spiffe://${TD}` });
  const i = await rsaPems();
  const issuer = forgeCert({ pubPem: i.pub, subjectCN: 'rsa issuer', issuer: anchor, signKeyPem: a.priv, ca: true, pathLen: 0, uri: `spiffe://${TD}` });
  return { anchor, issuer, issuerKey: i.priv, bundle: forge.pki.certificateToPem(anchor) };
}

function forgeCsr(k: { pub: string; priv: string }): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(k.pub);
  csr.setSubject([{ name: 'commonName', value: 'svc' }]);
  csr.sign(forge.pki.privateKeyFromPem(k.priv), forge.md.sha256.create());
  return forge.pki.certificationRequestToPem(csr);
}

function forgeSign(ca: { issuer: forge.pki.Certificate; issuerKey: string }, csrPem: string, service: string): string {
  const req = forge.pki.certificationRequestFromPem(csrPem);
  if (!req.verify()) throw new Error('bad csr');
  const cert = forge.pki.createCertificate();
  cert.publicKey = req.publicKey as forge.pki.PublicKey;
  cert.serialNumber = '40' + randomBytes(15).toString('hex');
  const now = Date.now();
  cert.validity.notBefore = new Date(now - 60_000);
  cert.validity.notAfter = new Date(now + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: service }]);
  cert.setIssuer(ca.issuer.subject.attributes);
  cert.setExtensions(FORGE_LEAF_EXTS(`spiffe://${TD}/svc/${service}`));
  cert.sign(forge.pki.privateKeyFromPem(ca.issuerKey), forge.md.sha256.create());
  return forge.pki.certificateToPem(cert);
}

// ---------------------------------------------------------------- p-256 + @peculiar/x509

const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

async function x509Authority(): Promise<{ cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }> {
  x509.cryptoProvider.set(webcrypto as never);
  const keys = (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as unknown as webcrypto.CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '40' + randomBytes(15).toString('hex'),
    name: 'CN=x509 issuer',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 365 * 86_400_000),
    signingAlgorithm: EC_ALG,
    keys,
    extensions: [new x509.BasicConstraintsExtension(true, 0, true), new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true)],
  });
  return { cert, keys };
}

async function x509Keygen(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as unknown as webcrypto.CryptoKeyPair;
}

async function x509Csr(keys: webcrypto.CryptoKeyPair): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ name: 'CN=svc', keys, signingAlgorithm: EC_ALG });
  return csr.toString('pem');
}

async function x509Sign(ca: { cert: x509.X509Certificate; keys: webcrypto.CryptoKeyPair }, csrPem: string, service: string): Promise<string> {
  const req = new x509.Pkcs10CertificateRequest(csrPem);
  if (!(await req.verify())) throw new Error('bad csr');
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: '40' + randomBytes(15).toString('hex'),
    subject: `CN=${service}`,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 86_400_000),
    signingAlgorithm: EC_ALG,
    publicKey: await req.publicKey.export(),
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: `spiffe://${TD}/svc/${service}` }]),
    ],
  });
  return cert.toString('pem');
}

// ---------------------------------------------------------------- handshakes

function startServer(m: Material): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--serve'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  child.send(m);
  return new Promise((resolve, reject) => {
    child.once('message', (msg: { port: number }) => resolve({ child, port: msg.port }));
    child.once('exit', (code) => reject(new Error(`server child exited with ${code}`)));
  });
}

function ask<T>(child: ChildProcess, cmd: string): Promise<T> {
  return new Promise((resolve) => {
    child.once('message', (m: T) => resolve(m));
    child.send({ cmd });
  });
}

/** Client options: one secure context shared by every connection (as transports should), or PEM per connection. */
function clientOptions(m: Material, shared: boolean): tls.ConnectionOptions {
  const creds = shared ? { secureContext: tls.createSecureContext({ ca: m.ca, cert: m.cert, key: m.key, minVersion: 'TLSv1.3' }) } : { ca: m.ca, cert: m.cert, key: m.key };
  return { ...creds, host: '127.0.0.1', minVersion: 'TLSv1.3', servername: 'server', checkServerIdentity: checkServerIdentityFor(TD, 'server') };
}

function handshake(port: number, opts: tls.ConnectionOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ ...opts, port }, () => s.end());
    s.on('error', reject);
    s.on('close', () => resolve());
    s.resume();
  });
}

interface HandshakeResult {
  perSec: number;
  clientCpuMs: number;
  serverCpuMs: number;
  errors: number;
}

async function handshakeRound(server: { child: ChildProcess; port: number }, client: tls.ConnectionOptions, concurrency: number, ms: number): Promise<HandshakeResult> {
  server.child.send({ cmd: 'start' });
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  let errors = 0;
  const loop = async (): Promise<void> => {
    while (performance.now() - t0 < ms) {
      try {
        await handshake(server.port, client);
        n++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const { cpuUs } = await ask<{ cpuUs: number }>(server.child, 'stop');
  return { perSec: (n / wall) * 1000, clientCpuMs: (c.user + c.system) / 1000 / n, serverCpuMs: cpuUs / 1000 / n, errors };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, iterations: { type: 'string', default: '100' }, json: { type: 'boolean', default: false } } });
  const seconds = Number(values.seconds);
  const iters = Number(values.iterations);
  const watchdog = setTimeout(() => {
    console.error('bench/tls.ts: watchdog fired after 120 s');
    process.exit(2);
  }, 120_000);
  watchdog.unref();

  const out: string[] = [];
  const log = (s: string): void => {
    out.push(s);
    console.log(s);
  };
  log(`Node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, node-forge ${(forge as unknown as { version?: string }).version ?? '1.4.x'}`);
  log('');
  log('### Issuance, per certificate (ms; mean / p50)');
  log('');
  log('| contender | keygen | CSR build | sign (CA side) | total |');
  log('|---|---|---|---|---|');

  // rsa-forge
  const rsaCa = await rsaAuthority();
  const rsaIters = Math.max(10, Math.floor(iters / 5));
  let rsaKey = await rsaPems();
  const rk = await timeOp(rsaIters, async () => (rsaKey = await rsaPems()));
  let rsaCsrPem = '';
  const rc = await timeOp(rsaIters, () => (rsaCsrPem = forgeCsr(rsaKey)));
  const rs = await timeOp(rsaIters, () => forgeSign(rsaCa, rsaCsrPem, 'svc'));
  const row = (name: string, k: Stat, c: Stat, s: Stat): void =>
    log(`| ${name} | ${k.meanMs.toFixed(2)} / ${k.p50Ms.toFixed(2)} | ${c.meanMs.toFixed(2)} / ${c.p50Ms.toFixed(2)} | ${s.meanMs.toFixed(2)} / ${s.p50Ms.toFixed(2)} | ${(k.meanMs + c.meanMs + s.meanMs).toFixed(2)} |`);
  row('RSA-2048, node-forge', rk, rc, rs);

  // p256-x509
  const xCa = await x509Authority();
  let xKeys = await x509Keygen();
  const xk = await timeOp(iters, async () => (xKeys = await x509Keygen()));
  let xCsrPem = '';
  const xc = await timeOp(iters, async () => (xCsrPem = await x509Csr(xKeys)));
  const xs = await timeOp(iters, () => x509Sign(xCa, xCsrPem, 'svc'));
  row('P-256, @peculiar/x509 (WebCrypto)', xk, xc, xs);

  // p256-trellis
  const ca = await createAuthority({ trustDomain: TD }, systemClock);
  let tKeys = await generateP256KeyPair();
  const tk = await timeOp(iters, async () => (tKeys = await generateP256KeyPair()));
  let tCsrPem = '';
  const tc = await timeOp(iters, () => (tCsrPem = buildCsr(tKeys, 'svc')));
  const ts = await timeOp(iters, () => issueLeaf(ca, { service: 'svc', publicKey: parseCsr(tCsrPem).publicKey, ttlMs: 86_400_000 }, systemClock));
  row('P-256, asn1 schemas + node:crypto (shipped)', tk, tc, ts);

  const tokenKey = await generateTokenKey();
  const token = createToken(tokenKey, { service: 'svc' }, systemClock);
  const tv = await timeOp(iters * 5, () => verifyToken(tokenKey, token, systemClock));
  log('');
  log(`Bootstrap token verify (Ed25519): ${(tv.meanMs * 1000).toFixed(0)} µs mean.`);

  // handshakes
  const rsaLeaf = async (service: string): Promise<Material> => {
    const k = await rsaPems();
    return { ca: rsaCa.bundle, cert: forgeSign(rsaCa, forgeCsr(k), service) + forge.pki.certificateToPem(rsaCa.issuer), key: k.priv };
  };
  const ecLeaf = async (service: string): Promise<Material> => {
    const k = await generateP256KeyPair();
    const leaf = issueLeaf(ca, { service, publicKey: k.publicKey, ttlMs: 86_400_000 }, systemClock);
    return { ca: leaf.caBundlePem, cert: leaf.certificateChainPem, key: privateKeyPem(k.privateKey) };
  };
  log('');
  log(`### TLS 1.3 mutual handshakes, full (no resumption), 3-level chain, ${seconds} s per cell`);
  log('');
  log('| leaf + chain | concurrency | handshakes/s | client CPU ms/handshake | server CPU ms/handshake | errors |');
  log('|---|---|---|---|---|---|');
  const results: Record<string, HandshakeResult> = {};
  const sizes: string[] = [];
  for (const [name, make] of [
    ['RSA-2048', rsaLeaf],
    ['P-256', ecLeaf],
  ] as const) {
    const serverMaterial = await make('server');
    const server = await startServer(serverMaterial);
    const clientMaterial = await make('client');
    sizes.push(`${name}: chain (leaf + issuer) ${Buffer.byteLength(clientMaterial.cert)} B of PEM, key ${Buffer.byteLength(clientMaterial.key)} B`);
    const client = clientOptions(clientMaterial, true);
    try {
      await handshakeRound(server, client, 4, 500); // warm-up
      for (const conc of [1, 16]) {
        const r = await handshakeRound(server, client, conc, seconds * 1000);
        results[`${name}/${conc}`] = r;
        log(`| ${name} | ${conc} | ${r.perSec.toFixed(0)} | ${r.clientCpuMs.toFixed(3)} | ${r.serverCpuMs.toFixed(3)} | ${r.errors} |`);
      }
      const r = await handshakeRound(server, clientOptions(clientMaterial, false), 1, seconds * 1000);
      results[`${name}/1/per-connection-context`] = r;
      log(`| ${name}, PEM per connection (no shared context) | 1 | ${r.perSec.toFixed(0)} | ${r.clientCpuMs.toFixed(3)} | ${r.serverCpuMs.toFixed(3)} | ${r.errors} |`);
    } finally {
      server.child.send({ cmd: 'exit' });
      await once(server.child, 'exit');
    }
  }
  log('');
  for (const line of sizes) log(`Sizes, ${line}.`);
  if (values.json) console.log(JSON.stringify({ rk, rc, rs, xk, xc, xs, tk, tc, ts, tv, results }));
  clearTimeout(watchdog);
}

if (process.argv.includes('--serve')) {
  void serve();
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
