/**
 * The `trellis` CLI. End to end (spawned processes, a temp dir): `ca init`, `cert issue` for
 * two services, `token create`, then the issued files carry a mutual-TLS handshake with SPIFFE
 * checks, and the token verifies against the CA's key. In-process (runCli): each kind of bad
 * command line fails with a message naming what was wrong and exit code 2, and failures of the
 * work itself (existing CA, missing CA directory) exit 1.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/core/clock.js';
import { commands } from '../../src/cli/commands/index.js';
import { runCli } from '../../src/cli/run.js';
import { loadTokenKey } from '../../src/tls/authority-files.js';
import { checkServerIdentityFor } from '../../src/tls/spiffe.js';
import { verifyToken } from '../../src/tls/tokens.js';
import { connect, meshServer } from '../tls/fixtures.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const execFileAsync = promisify(execFile);

async function trellis(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await execFileAsync(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), ...args], { cwd: root, env: { ...process.env, ...env }, timeout: 20_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function inProcess(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env, clock: new ManualClock(0, Date.now()) }, commands);
  return { code, stdout, stderr };
}

describe('trellis CLI', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-cli-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('ca init, cert issue and token create produce files that carry an mTLS handshake', async () => {
    const ca = join(dir, 'ca');
    const init = await trellis(['ca', 'init', '--dir', ca, '--trust-domain', 'example.org', '--anchor-passphrase-env', 'ANCHOR_PASS'], { ANCHOR_PASS: 'a long enough passphrase' });
    assert.equal(init.code, 0, init.stderr);
    assert.match(init.stdout, /Created a CA for trust domain example\.org/);
    for (const f of ['anchor.key', 'issuer.key', 'token.key']) assert.equal((await stat(join(ca, f))).mode & 0o777, 0o600, f);
    assert.match(await readFile(join(ca, 'anchor.key'), 'utf8'), /ENCRYPTED PRIVATE KEY/);

    const [products, checkout, token] = await Promise.all([
      trellis(['cert', 'issue', '--service', 'products', '--dir', ca, '--out', join(dir, 'products')]),
      trellis(['cert', 'issue', '--service', 'checkout', '--dir', ca, '--out', join(dir, 'checkout'), '--ttl', '2h']),
      trellis(['token', 'create', '--service', 'checkout', '--dir', ca, '--ttl', '10m']),
    ]);
    assert.equal(products.code, 0, products.stderr);
    assert.equal(checkout.code, 0, checkout.stderr);
    assert.match(products.stdout, /Issued spiffe:\/\/example\.org\/svc\/products, NotAfter/);
    assert.equal((await stat(join(dir, 'products', 'svc.key'))).mode & 0o777, 0o600);
    const leaf = new X509Certificate(await readFile(join(dir, 'checkout', 'svc.pem')));
    assert.ok(Math.abs(Date.parse(leaf.validTo) - Date.now() - 2 * 3_600_000) < 60_000, 'honours --ttl');

    assert.equal(token.code, 0, token.stderr);
    const tokenText = token.stdout.trim();
    assert.match(tokenText, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.match(token.stderr, /Token for service checkout, expires at .*, jti /);
    assert.ok(!token.stderr.includes(tokenText), 'the token goes to stdout only');
    const v = verifyToken(await loadTokenKey(ca), tokenText, { now: () => 0, wall: () => Date.now() });
    assert.equal(v.service, 'checkout');

    const files = async (svc: string) => ({
      ca: await readFile(join(dir, svc, 'ca.pem'), 'utf8'),
      cert: await readFile(join(dir, svc, 'svc.pem'), 'utf8'),
      key: await readFile(join(dir, svc, 'svc.key'), 'utf8'),
    });
    const server = await meshServer(await files('products'));
    try {
      assert.equal(await connect(server.port, { ...(await files('checkout')), checkServerIdentity: checkServerIdentityFor('example.org', 'products') }), 'hello');
      assert.deepEqual(server.callers, [{ service: 'checkout', spiffeId: 'spiffe://example.org/svc/checkout' }]);
    } finally {
      await server.close();
    }

    const again = await trellis(['ca', 'init', '--dir', ca, '--trust-domain', 'example.org']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a CA/);
  });

  it('bad command lines exit 2 and name what was wrong', async () => {
    const cases: [string[], RegExp][] = [
      [[], /Usage: trellis <command>/],
      [['frob'], /unknown command "frob"/],
      [['ca', 'init', '--dir', join(dir, 'x')], /--trust-domain is required/],
      [['ca', 'init', '--dir', join(dir, 'x'), '--trust-domain', 'Example.ORG'], /--trust-domain "Example.ORG" is not a valid trust domain/],
      [['ca', 'init', '--dir', join(dir, 'x'), '--trust-domain', 'example.org', '--anchor-passphrase-env', 'UNSET_VAR'], /environment variable UNSET_VAR is not set/],
      [['ca', 'init', '--dir', join(dir, 'x'), '--trust-domain', 'example.org', '--bogus'], /Unknown option '--bogus'/],
      [['cert', 'issue', '--service', 'Products!', '--dir', dir], /--service "Products!" is not a valid service name/],
      [['cert', 'issue', '--service', 'p', '--dir', dir, '--ttl', 'soon'], /--ttl "soon" is not a positive duration/],
      [['token', 'create', '--service', 'p', '--dir', dir, '--ttl', '1000h'], /--ttl must be between 1s and 720h/],
      [['token', 'create', '--dir', dir], /--service is required/],
    ];
    for (const [args, re] of cases) {
      const r = await inProcess(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, re, args.join(' '));
    }
    const help = await inProcess(['cert', 'issue', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /--out DIR/);
  });

  it('failures of the work exit 1 and name the file', async () => {
    const r = await inProcess(['cert', 'issue', '--service', 'p', '--dir', join(dir, 'missing')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /missing\/ca\.pem: cannot read: ENOENT/);
    const t = await inProcess(['token', 'create', '--service', 'p', '--dir', join(dir, 'missing')]);
    assert.equal(t.code, 1);
    assert.match(t.stderr, /missing\/token\.key/);
  });
});
