/**
 * The `trellis` binary (dist/cli/main.js, built) against a real control plane: one started as
 * a process by `trellis control-plane` (first start, admin token 0600, apply / get / delete /
 * token create / check, refusals, the pin, SIGTERM, restart), and one in this process, whose
 * store the test writes an instance NACK into, for `trellis check` to fail on. Plus the
 * command-line conveniences: --version, partial commands, "did you mean", check --pre.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { pinOfToken } from '../../src/controlplane-client/pin.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import { startTestPlane, type TestPlane } from '../controlplane/api-fixtures.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const bin = join(root, 'dist/cli/main.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function trellis(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(process.execPath, [bin, ...args], { cwd: root, env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      done({ code, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin?.end(stdin);
    else child.stdin?.end();
  });
}

async function startProcess(dir: string): Promise<{ child: ChildProcess; url: string; stdout: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [bin, 'control-plane', '--data', dir, '--listen', '127.0.0.1:0', '--trust-domain', 'example.org'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let out = '';
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (https:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined && out.includes('admin token')) resolveUrl(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`control plane exited ${code}: ${err}`)));
  });
  return { child, url, stdout: out, exited };
}

const SERVICE = `apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  protocol: http
  endpoints: [{ address: 127.0.0.1:8081, labels: { version: v1 } }]
`;

describe('trellis CLI against a control-plane process', () => {
  let dir: string;
  let cp: Awaited<ReturnType<typeof startProcess>>;
  let env: Record<string, string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trellis-cli-cp-'));
    cp = await startProcess(join(dir, 'data'));
    env = { TRELLIS_CONTROL_PLANE: cp.url, TRELLIS_ADMIN_TOKEN: `@${join(dir, 'data', 'admin-token')}` };
  });
  after(async () => {
    if (cp.child.exitCode === null) {
      cp.child.kill('SIGKILL');
      await cp.exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('first start writes the admin token 0600 and says where it is', async () => {
    const path = join(dir, 'data', 'admin-token');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    assert.ok(cp.stdout.includes(path), cp.stdout);
    assert.match(await readFile(path, 'utf8'), /^trellis-admin\.[0-9a-f]{64}\.[\w-]{43}\n$/);
    assert.ok(!cp.stdout.includes((await readFile(path, 'utf8')).trim()), 'the token itself is never printed');
  });

  it('apply, get in three formats, dry run, delete', async () => {
    const file = join(dir, 'products.yaml');
    await writeFile(file, SERVICE);
    const applied = await trellis(['apply', '-f', file], env);
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal(applied.stdout, 'service/products created\n');

    const tableOut = await trellis(['get', 'service'], env);
    assert.equal(tableOut.code, 0, tableOut.stderr);
    assert.match(tableOut.stdout, /^NAME\s+PROTOCOL\s+DISCOVERY\s+ROUTES\s+REVISION\nproducts\s+http\s+1 static\s+0\s+\d+\n$/);
    const jsonOut = await trellis(['get', 'service', 'products', '-o', 'json'], env);
    assert.equal(JSON.parse(jsonOut.stdout).spec.endpoints[0].address, '127.0.0.1:8081');
    const yamlOut = await trellis(['get', 'service', 'products', '-o', 'yaml'], env);
    assert.match(yamlOut.stdout, /kind: Service\nmetadata:\n {2}name: products\n {2}revision: \d+\n/);

    // The yaml round-trips: applied back unchanged (its revision is current).
    const back = await trellis(['apply', '-f', '-'], env, yamlOut.stdout);
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout, 'service/products unchanged\n');

    const dry = await trellis(['apply', '-f', '-', '--dry-run'], env, SERVICE.replace('products', 'drafts'));
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, 'service/drafts created (dry run)\n');
    assert.equal((await trellis(['get', 'service', 'drafts'], env)).code, 1, 'the dry run created nothing');

    const inst = await trellis(['get', 'instances'], env);
    assert.equal(inst.code, 0, inst.stderr);
    assert.match(inst.stdout, /^SERVICE\s+INSTANCE/);

    const del = await trellis(['delete', 'service', 'products'], env);
    assert.equal(del.code, 0, del.stderr);
    assert.equal(del.stdout, 'service/products deleted\n');
    const gone = await trellis(['get', 'service', 'products'], env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /TRELLIS_NOT_FOUND/);
  });

  it('an invalid apply exits 1 naming file, line, document and field, and changes nothing', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, `${SERVICE.replace('products', 'orders')}---\n${SERVICE.replace('protocol: http', 'protocol: http\n  timeout: fast')}`);
    const r = await trellis(['apply', '-f', file], env);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${file}:13 (document 1) spec.timeout:`), r.stderr);
    assert.equal(r.stdout, '');
    assert.equal((await trellis(['get', 'service', 'orders'], env)).code, 1, 'the valid document was not applied');
  });

  it('refuses a wrong admin token, and a token pinning another CA before sending anything', async () => {
    const token = (await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim();
    const [prefix, pin, secret] = token.split('.') as [string, string, string];
    const wrongSecret = `${prefix}.${pin}.${secret.startsWith('A') ? 'B' : 'A'}${secret.slice(1)}`;
    const file = join(dir, 'products.yaml');
    const r = await trellis(['apply', '-f', file, '--admin-token', wrongSecret], { TRELLIS_CONTROL_PLANE: cp.url });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /warning: an admin token given on the command line/);
    assert.match(r.stderr, /TRELLIS_TOKEN_INVALID/);

    const otherPin = `${pin.startsWith('0') ? '1' : '0'}${pin.slice(1)}`;
    const wrongPin = `${prefix}.${otherPin}.${secret}`;
    const p = await trellis(['get', 'service'], { TRELLIS_CONTROL_PLANE: cp.url, TRELLIS_ADMIN_TOKEN: wrongPin });
    assert.equal(p.code, 1);
    assert.ok(p.stderr.includes(`sha256:${otherPin}`) && p.stderr.includes(`sha256:${pin}`), p.stderr);
    assert.match(p.stderr, /TRELLIS_PEER_IDENTITY/);
  });

  it('token create prints only a token that pins the control plane', async () => {
    const r = await trellis(['token', 'create', '--service', 'checkout', '--ttl', '2h'], env);
    assert.equal(r.code, 0, r.stderr);
    const token = r.stdout.trim();
    assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
    const adminPin = pinOfToken((await readFile(join(dir, 'data', 'admin-token'), 'utf8')).trim());
    assert.equal(pinOfToken(token), adminPin);
    assert.match(r.stderr, /Token for service checkout/);
    assert.ok(!r.stderr.includes(token));
    const jti = /jti (\S+),/.exec(r.stderr)?.[1] as string;
    const revoked = await trellis(['token', 'revoke', jti], env);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(revoked.stdout, `token ${jti} (service checkout) revoked\n`);
  });

  it('check passes on a healthy control plane', async () => {
    const r = await trellis(['check'], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /√ control plane is reachable/);
    assert.match(r.stdout, /√ store is healthy/);
    assert.match(r.stdout, /Status check results are √/);
  });

  it('SIGTERM closes it cleanly; a restart keeps the CA pin and the admin token', async () => {
    const tokenBefore = await readFile(join(dir, 'data', 'admin-token'), 'utf8');
    cp.child.kill('SIGTERM');
    assert.equal(await cp.exited, 0);
    cp = await startProcess(join(dir, 'data'));
    assert.equal(await readFile(join(dir, 'data', 'admin-token'), 'utf8'), tokenBefore);
    const r = await trellis(['check'], { ...env, TRELLIS_CONTROL_PLANE: cp.url });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });
});

describe('trellis check against a control plane with a problem', () => {
  let plane: TestPlane;
  let env: Record<string, string>;
  before(async () => {
    plane = await startTestPlane();
    env = { TRELLIS_CONTROL_PLANE: plane.cp.url, TRELLIS_ADMIN_TOKEN: plane.adminToken };
  });
  after(async () => {
    await plane.close();
  });

  it('fails with the NACK and its reason', async () => {
    await plane.cp.store.commit([
      { type: 'put', key: KEYS.instance('products', 'i-7'), value: { id: 'i-7', service: 'products', labels: {}, endpoints: [], replica: 'r', connectedAt: 1 } },
      { type: 'put', key: KEYS.instanceStatus('products', 'i-7'), value: { id: 'i-7', service: 'products', sent: '12', acked: '9', nacked: { version: '12', reason: 'spec.routes[0].backends: all weights are zero', at: 2 }, lastSeen: 3 } },
    ]);
    const r = await trellis(['check'], env);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /× every instance ACKed its latest configuration\n {4}instance i-7 of products NACKed version 12: spec\.routes\[0\]\.backends: all weights are zero/);
    assert.match(r.stdout, /Status check results are ×/);
  });

  it('shows warnings for callers without a Service and subsets that select nothing, without failing on them', async () => {
    const fresh = await startTestPlane();
    try {
      const doc = `apiVersion: trellis/v1
kind: Service
metadata: { name: products }
spec:
  protocol: http
  endpoints: [{ address: 127.0.0.1:8081, labels: { version: v1 } }]
  routes: [{ name: default, backends: [{ subset: { version: v2 } }] }]
  inbound: { authorization: { allow: [{ from: [frontend] }] } }
`;
      const applied = await trellis(['apply', '-f', '-'], { TRELLIS_CONTROL_PLANE: fresh.cp.url, TRELLIS_ADMIN_TOKEN: fresh.adminToken }, doc);
      assert.equal(applied.code, 0, applied.stderr);
      const r = await trellis(['check'], { TRELLIS_CONTROL_PLANE: fresh.cp.url, TRELLIS_ADMIN_TOKEN: fresh.adminToken });
      assert.equal(r.code, 0, r.stdout);
      assert.match(r.stdout, /‼ Service products: inbound\.authorization names caller "frontend", which has no Service document/);
      assert.match(r.stdout, /‼ Service products route default: backend subset \{version: v2\} selects no endpoint/);
      assert.match(r.stdout, /Status check results are √ \(2 warnings\)/);
    } finally {
      await fresh.close();
    }
  });

  it('fails when no control plane answers', async () => {
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    await new Promise<void>((r) => server.close(() => r()));
    const r = await trellis(['check'], { ...env, TRELLIS_CONTROL_PLANE: `https://127.0.0.1:${port}` });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /× control plane is reachable\n {4}ECONNREFUSED/);
  });
});

describe('trellis command line conveniences', () => {
  it('--version prints the package version', async () => {
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { version: string };
    const r = await trellis(['--version']);
    assert.equal(r.code, 0);
    assert.equal(r.stdout, `trellis ${pkg.version}\n`);
  });

  it('partial commands list their subcommands; typos get a suggestion', async () => {
    const ca = await trellis(['ca']);
    assert.equal(ca.code, 0);
    assert.match(ca.stdout, /ca init/);
    const get = await trellis(['get']);
    assert.equal(get.code, 0);
    assert.match(get.stdout, /get service[\s\S]*get mesh[\s\S]*get instances/);
    const token = await trellis(['token']);
    assert.match(token.stdout, /token create/);
    const typo = await trellis(['aply', '-f', 'x']);
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown command "aply" \(did you mean "apply"\?\)/);
    const sub = await trellis(['get', 'servce']);
    assert.match(sub.stderr, /did you mean "get service"/);
    const opt = await trellis(['apply', '--dryrun', '-f', 'x']);
    assert.equal(opt.code, 2);
    assert.match(opt.stderr, /did you mean "--dry-run"/);
  });

  it('check --pre passes on a free port and a writable directory, and fails on a busy port', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trellis-pre-'));
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const busy = (server.address() as AddressInfo).port;
    try {
      const ok = await trellis(['check', '--pre', '--data', join(dir, 'new'), '--listen', '127.0.0.1:0']);
      assert.equal(ok.code, 0, ok.stdout);
      assert.match(ok.stdout, /√ Node\.js .* is supported/);
      assert.match(ok.stdout, /√ data directory .* is writable/);
      const bad = await trellis(['check', '--pre', '--data', dir, '--listen', `127.0.0.1:${busy}`]);
      assert.equal(bad.code, 1);
      assert.match(bad.stdout, new RegExp(`× listen address 127\\.0\\.0\\.1:${busy} is free\\n {4}127\\.0\\.0\\.1:${busy} is in use`));
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
