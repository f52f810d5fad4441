/**
 * The package installs and works the ways users install it: `npm pack` (which runs `prepare`,
 * the build), the tarball installed into a scratch app, then imported from ESM, required from
 * CommonJS, its `trellis` bin run, and a TypeScript file type-checked against its types, for
 * both `import` and `require`. Dependencies come from the npm cache (`--prefer-offline`).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false' } }, (err, out, errOut) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, out, err: errOut });
    });
  });
}

describe('prepare in a clone without its dev dependencies', () => {
  it('stops with what to do, not "tsc: not found"', async () => {
    // A folder install links the clone without installing its dev dependencies; a copy of
    // package.json alone, with no node_modules around it, is that clone.
    const clone = await mkdtemp(path.join(tmpdir(), 'trellis-clone-'));
    try {
      await writeFile(path.join(clone, 'package.json'), await readFile(path.join(root, 'package.json')));
      const r = await run(npm, ['run', 'prepare', '--silent'], clone);
      assert.notEqual(r.code, 0);
      assert.ok(r.err.includes(`Run npm install in ${clone} first`), r.err);
      assert.doesNotMatch(r.err, /tsc: not found/);
    } finally {
      await rm(clone, { recursive: true, force: true });
    }
  });
});

describe('installing the package from its tarball', { timeout: 420_000 }, () => {
  let dir = '';
  let app = '';

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'trellis-install-'));
    const packed = await run(npm, ['pack', '--pack-destination', dir, '--silent'], root);
    assert.equal(packed.code, 0, packed.err);
    const tarball = (await readdir(dir)).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball !== undefined, `npm pack left no tarball in ${dir}`);
    app = path.join(dir, 'app');
    await run('mkdir', ['-p', app], dir);
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true }));
    const installed = await run(npm, ['install', '--prefer-offline', '--no-package-lock', path.join(dir, tarball)], app, 240_000);
    assert.equal(installed.code, 0, installed.err);
  }, { timeout: 300_000 });

  after(async () => {
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('imports from ESM', async () => {
    const r = await run(process.execPath, ['--input-type=module', '-e', "import { meshClient, isTrellisError, ERROR_CODES } from 'trellis'; console.log(typeof meshClient, typeof isTrellisError, Object.keys(ERROR_CODES).length > 10);"], app);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), 'function function true');
  });

  it('requires from CommonJS, and a mesh made there works', async () => {
    const script = [
      "const { meshClient, isTrellisError } = require('trellis');",
      "meshClient({ service: 'app', config: 'apiVersion: trellis/v1\\nkind: Mesh\\nmetadata: { name: default }\\nspec: { mtls: off }\\n' })",
      "  .then(async (mesh) => { console.log(typeof isTrellisError, mesh.service); await mesh.close(); });",
    ].join('\n');
    const r = await run(process.execPath, ['-e', script], app);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out.trim(), 'function app');
  });

  it('runs the trellis bin (executable, with a shebang)', async () => {
    const bin = path.join(app, 'node_modules', '.bin', 'trellis');
    assert.ok(((await stat(bin)).mode & 0o111) !== 0, 'the bin is executable');
    const r = await run(bin, ['--help'], app);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Usage: trellis/);
  });

  it('type-checks TypeScript against its types, from ESM and CommonJS', async () => {
    await writeFile(path.join(app, 'esm.mts'), [
      "import { meshClient, isTrellisError } from 'trellis';",
      "import type { Mesh, MeshClientOptions } from 'trellis';",
      "const options: MeshClientOptions = { service: 'app' };",
      "const mesh: Mesh = await meshClient(options);",
      "const n: number = mesh.configVersion;",
      "if (isTrellisError(new Error(), 'TRELLIS_TIMEOUT')) console.log(n);",
      '',
    ].join('\n'));
    await writeFile(path.join(app, 'cjs.cts'), [
      "import trellis = require('trellis');",
      "const p: Promise<trellis.Mesh> = trellis.meshClient({ service: 'app' });",
      'void p;',
      '',
    ].join('\n'));
    await writeFile(path.join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, types: ['node'], typeRoots: [path.join(root, 'node_modules', '@types')] },
      files: ['esm.mts', 'cjs.cts'],
    }));
    // A deliberate error must be reported, so a pass is not an unchecked file.
    await writeFile(path.join(app, 'wrong.mts'), "import { meshClient } from 'trellis';\nawait meshClient({ service: 42 });\n");
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const ok = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], app);
    assert.equal(ok.code, 0, ok.out + ok.err);
    // Only the deliberate error is looked for here: skipping the libraries' declarations (checked
    // by the run above) halves the time of this second program.
    const bad = await run(process.execPath, [tsc, '--noEmit', '--skipLibCheck', '--strict', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), 'wrong.mts'], app);
    assert.notEqual(bad.code, 0);
    assert.match(bad.out, /wrong\.mts.*TS2322/);
  });
});
