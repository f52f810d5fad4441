/**
 * The commands docs/inbound.md gives for calling a strict service by hand are run as written
 * (read from the doc, with the real port in place of 8443): `trellis ca init`, `trellis cert
 * issue`, then a real curl with the issued certificate. The server, a mesh in strict mode with
 * the issued identity, must see the caller by name; curl in plaintext must get the 400 saying
 * mTLS is required, and curl without --resolve must be refused on the name. Skipped (with the
 * reason) when there is no curl on the machine.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { meshClient } from 'trellis';
import type { Mesh } from 'trellis';

const root = fileURLToPath(new URL('../..', import.meta.url));
const cli = path.join(root, 'dist', 'cli', 'main.js');

function hasCurl(): boolean {
  try {
    execFileSync('curl', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: 60_000 }, (err, out, errOut) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, out, err: errOut });
    });
  });
}

/** The shell block under "Calling a strict service by hand", one command per line. */
async function documentedCommands(): Promise<string[][]> {
  const text = await readFile(path.join(root, 'docs', 'inbound.md'), 'utf8');
  const at = text.indexOf('**Calling a strict service by hand.**');
  assert.ok(at >= 0, 'docs/inbound.md has the section');
  const block = /```sh\n([\s\S]*?)```/.exec(text.slice(at));
  assert.ok(block?.[1] !== undefined, 'the section has a sh block');
  return block[1].split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => l.split(/\s+/));
}

// Locally a missing curl skips each test loudly; under CI it must be there (.ci/run installs it).
const skip = hasCurl() || process.env['CI'] !== undefined ? false : 'SKIPPED: no curl on this machine (CI installs it)';

describe('calling a strict service by hand, as docs/inbound.md says', () => {
  let dir = '';
  let mesh: Mesh | undefined;
  let port = 0;
  const seen: string[] = [];
  let curlLine: string[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'trellis-curl-'));
    const commands = await documentedCommands();
    for (const argv of commands.filter((c) => c[0] === 'trellis')) {
      const r = await run(process.execPath, [cli, ...argv.slice(1)], dir);
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.err}`);
    }
    const curl = commands.find((c) => c[0] === 'curl');
    assert.ok(curl !== undefined, 'the block has a curl command');
    curlLine = curl;
    const p = (f: string): string => path.join(dir, 'products', f);
    mesh = await meshClient({
      service: 'products',
      config: 'apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { trustDomain: example.org, mtls: strict }\n',
      tls: { ca: p('ca.pem'), cert: p('svc.pem'), key: p('svc.key') },
      logger: { warn: () => undefined },
    });
    const server = await mesh.serve((req, res) => {
      seen.push(`${req.url ?? ''} from ${req.trellis?.peer.service ?? '?'}`);
      res.end('ok\n');
    }, { port: 0, host: '127.0.0.1' });
    port = server.port;
  });
  after(async () => {
    await mesh?.close();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('the documented curl command reaches the handler, which sees the caller', { skip }, async () => {
    const args = curlLine.slice(1).map((a) => a.replaceAll('8443', String(port)));
    const r = await run('curl', ['-sS', ...args], dir);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'ok\n');
    assert.deepEqual(seen, ['/list from caller']);
  });

  it('without --resolve curl refuses the name, and plaintext gets the 400 saying mTLS is required', { skip }, async () => {
    const before = seen.length;
    const noResolve = await run('curl', ['-sS', '--cacert', 'caller/ca.pem', '--cert', 'caller/svc.pem', '--key', 'caller/svc.key', `https://127.0.0.1:${port}/list`], dir);
    assert.notEqual(noResolve.code, 0);
    assert.match(noResolve.err, /match(es)? target host name/);
    const plain = await run('curl', ['-sS', '-i', `http://127.0.0.1:${port}/list`], dir);
    assert.equal(plain.code, 0, plain.err);
    assert.match(plain.out, /^HTTP\/1\.1 400 /);
    assert.match(plain.out, /requires mTLS/);
    assert.equal(seen.length, before, 'neither reached the handler');
  });
});
