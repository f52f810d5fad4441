/**
 * `trellis dashboard`: prints the dashboard's URL and checks that it answers (exit 1 with the
 * way to start it when nothing does).
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { systemClock } from '../../src/core/clock.js';
import { commands } from '../../src/cli/commands/index.js';
import { runCli } from '../../src/cli/run.js';
import { createFleet } from '../../src/controlplane/fleet/index.js';
import { startDashboard } from '../../src/controlplane/dashboard/index.js';
import { MemoryStore } from '../../src/controlplane/store/memory-store.js';
import { freePort } from '../helpers/prometheus.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function trellis(args: string[], env: Record<string, string> = {}) {
  let stdout = '';
  let stderr = '';
  const code = await runCli(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env, clock: systemClock }, commands);
  return { code, stdout, stderr };
}

describe('trellis dashboard', () => {
  it('prints the URL of a running dashboard', async () => {
    const store = new MemoryStore();
    cleanup.push(() => store.close());
    const d = await startDashboard({ host: '127.0.0.1', port: 0, fleet: createFleet({ store }), store, checkAdminToken: () => false });
    cleanup.push(() => d.close());
    const address = new URL(d.url).host;
    const r = await trellis(['dashboard', '--address', address]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, d.url + '\n');
    const viaEnv = await trellis(['dashboard'], { TRELLIS_DASHBOARD: address });
    assert.equal(viaEnv.stdout, d.url + '\n');
  });

  it('says how to start it when nothing answers, and refuses a bad address', async () => {
    const port = await freePort();
    const r = await trellis(['dashboard', '--address', `127.0.0.1:${port}`]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, `http://127.0.0.1:${port}/\n`);
    assert.match(r.stderr, /no dashboard answers at .*start it with trellis control-plane --dashboard HOST:PORT/);
    const bad = await trellis(['dashboard', '--address', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--address "nope" is not HOST:PORT/);
  });
});
