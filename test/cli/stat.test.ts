/**
 * `trellis stat` against a control plane over real HTTPS, verified only through the admin
 * token's CA pin, answering from a Fleet fed by real reports of real mesh traffic: the table,
 * one service's routes/instances/edges, JSON output, the no-traffic line, refusals (wrong pin,
 * wrong secret, no control plane), and `--watch` in a real process stopped by Ctrl-C.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { systemClock } from '../../src/core/clock.js';
import { commands } from '../../src/cli/commands/index.js';
import { runCli } from '../../src/cli/run.js';
import { createFleet } from '../../src/controlplane/fleet/index.js';
import type { StatBody } from '../../src/controlplane/fleet/index.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { KEYS } from '../../src/controlplane/store/store.js';
import { startFleetMesh } from '../helpers/fleet-mesh.js';
import type { FleetMesh } from '../helpers/fleet-mesh.js';
import { startStatControlPlane } from '../helpers/stat-control-plane.js';
import type { StatControlPlane } from '../helpers/stat-control-plane.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function trellis(args: string[], env: Record<string, string | undefined>): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env, clock: systemClock }, commands);
  return { code, stdout, stderr };
}

let mesh: FleetMesh;
let cp: StatControlPlane;
let idle: StatControlPlane;
let env: Record<string, string>;

before(async () => {
  mesh = await startFleetMesh();
  cleanup.push(() => mesh.close());
  const store = new MemoryStore();
  cleanup.push(() => store.close());
  await mesh.register(store);
  const fleet = createFleet({ store });
  cp = await startStatControlPlane(fleet);
  cleanup.push(() => cp.close());
  await mesh.traffic(30);
  await mesh.report(fleet);
  env = { TRELLIS_CONTROL_PLANE: cp.url, TRELLIS_ADMIN_TOKEN: cp.adminToken };

  const idleStore = new MemoryStore();
  cleanup.push(() => idleStore.close());
  await idleStore.commit([{ type: 'put', key: KEYS.resource('Service', 'products'), value: mesh.productsDocument(50, 50) }]);
  idle = await startStatControlPlane(createFleet({ store: idleStore }));
  cleanup.push(() => idle.close());
});

describe('trellis stat', () => {
  it('prints one row per service with instances, success, rps and latency', async () => {
    const r = await trellis(['stat'], env);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0] ?? '', /^NAME\s+INSTANCES\s+SUCCESS\s+RPS\s+LATENCY_P50\s+LATENCY_P95\s+LATENCY_P99$/);
    const row = (name: string): string[] => (lines.find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}* `)) ?? '').trim().split(/\s+/);
    assert.deepEqual(row('products').slice(0, 3), ['products', '2', '100.00%']);
    assert.deepEqual(row('ratings').slice(0, 3), ['ratings', '1', '0.00%']);
    for (const s of ['frontend', 'products', 'ratings', 'reviews', 'loadgen*']) assert.match(row(s.replace('*', ''))[3] ?? '', /^\d+\.\d+rps$/, `${s} has a rate`);
    assert.match(r.stdout, /\* serves nothing: the figures are what it sent\./);
    assert.match(r.stdout, /^frontend\s+ratings \(failing\)\s+0\.00%/m);
    assert.equal(cp.statQueries.at(-1), '?window=1m');
  });

  it('for one service: its routes with weights and live split, instances with config and edges', async () => {
    const r = await trellis(['stat', 'products', '--window', '10m', '--admin-token', cp.adminToken, '--control-plane', cp.url], {});
    assert.equal(r.code, 0, r.stderr);
    assert.equal(cp.statQueries.at(-1), '?window=10m&service=products');
    assert.match(r.stdout, /^ROUTE\s+SUCCESS\s+RPS.*BACKENDS$/m);
    assert.match(r.stdout, /^catalog\s+100\.00%.*version=v1 50% \(live \d+%\), version=v2 50% \(live \d+%\)$/m);
    assert.match(r.stdout, /^products-v1\s+version=v1\s+7 ACK\s+100\.00%/m);
    assert.match(r.stdout, /^products-v2\s+version=v2\s+7 ACK\s+100\.00%/m);
    assert.match(r.stdout, /^frontend\s+products\s+100\.00%/m);
    assert.match(r.stdout, /^products\s+reviews\s+100\.00%/m);
  });

  it('prints the /v1/stat body with -o json', async () => {
    const r = await trellis(['stat', '-o', 'json', '--window', '10s'], env);
    assert.equal(r.code, 0, r.stderr);
    const body = JSON.parse(r.stdout) as StatBody;
    assert.equal(body.window, '10s');
    assert.deepEqual(body.services.map((s) => s.name), ['frontend', 'loadgen', 'products', 'ratings', 'reviews']);
  });

  it('says clearly when there is no traffic yet', async () => {
    const r = await trellis(['stat'], { TRELLIS_CONTROL_PLANE: idle.url, TRELLIS_ADMIN_TOKEN: idle.adminToken });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^products\s+0\s+-\s+-\s+-\s+-\s+-$/m);
    assert.match(r.stdout, /No traffic to the mesh in the last 1m \(0 instances reporting\)\. Send requests through the mesh, or widen the window with --window 10m\./);
  });

  it('refuses a control plane whose CA does not match the token pin, and a wrong admin secret', async () => {
    const foreign = await trellis(['stat'], { TRELLIS_CONTROL_PLANE: cp.url, TRELLIS_ADMIN_TOKEN: idle.adminToken });
    assert.equal(foreign.code, 1);
    assert.match(foreign.stderr, /is not the one the token pins/);
    const [, pin] = cp.adminToken.split('.');
    const wrong = await trellis(['stat'], { TRELLIS_CONTROL_PLANE: cp.url, TRELLIS_ADMIN_TOKEN: `trellis-admin.${pin}.${'A'.repeat(43)}` });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /TRELLIS_UNAUTHENTICATED: admin token required/);
  });

  it('refuses a bad command line with exit 2 and says what is missing', async () => {
    const none = await trellis(['stat'], {});
    assert.equal(none.code, 2);
    assert.match(none.stderr, /no admin token: give --admin-token @FILE/);
    const noUrl = await trellis(['stat'], { TRELLIS_ADMIN_TOKEN: env['TRELLIS_ADMIN_TOKEN'] ?? '' });
    assert.equal(noUrl.code, 2);
    assert.match(noUrl.stderr, /no control plane: give --control-plane URL or set TRELLIS_CONTROL_PLANE/);
    const window = await trellis(['stat', '--window', '5m'], env);
    assert.equal(window.code, 2);
    assert.match(window.stderr, /--window "5m" is not one of 10s, 1m, 10m/);
    const two = await trellis(['stat', 'a', 'b'], env);
    assert.equal(two.code, 2);
    assert.match(two.stderr, /unexpected argument "b"/);
    assert.match(two.stderr, /Usage: trellis stat \[SERVICE\] \[options\]/);
  });

  it('--watch redraws until Ctrl-C, in a real process', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'stat', '--watch', '--interval', '100ms'], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    cleanup.push(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if ((out.match(/Every 0\.1s: trellis stat --window 1m/g) ?? []).length >= 2) resolve();
      });
      void exited.then(() => reject(new Error(`exited before two frames: ${err}`)));
    });
    child.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.ok(out.includes('\x1b[H\x1b[2J'), 'each frame clears the screen');
    assert.match(out, /^products\s+2\s+100\.00%/m);
  });
});
