/**
 * Live changes under load: config versions and endpoint sets change while requests flow,
 * and no request is lost; a refused config keeps the one in force.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { meshClient, isTrellisError, ConfigInvalidError } from 'trellis';
import { runLoad, serviceYaml, startServers, quietLogger } from '../helpers/servers.js';
import type { TestServer } from '../helpers/servers.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

describe('live configuration', () => {
  it('config and endpoint changes under load lose no request', async () => {
    const ss: TestServer[] = await startServers(4, 'live', { kind: 'ok', delayMs: 2 });
    cleanup.push(() => Promise.all(ss.map((s) => s.close())).then(() => undefined));
    const addr = ss.map((s) => ({ address: s.address }));
    const versions = [
      serviceYaml('products', addr.slice(0, 2), 'loadBalancer: round-robin'),
      serviceYaml('products', addr.slice(1, 4), 'loadBalancer: least-request'),
      serviceYaml('products', addr.slice(2, 4), 'loadBalancer: ewma\ntimeout: 5s'),
      serviceYaml('products', addr.slice(0, 1), 'loadBalancer: random'),
      serviceYaml('products', addr, 'loadBalancer: ring-hash'),
    ];
    const mesh = await meshClient({ config: versions[0], logger: quietLogger() });
    cleanup.push(() => mesh.close());
    let changes = 0;
    const changer = (async () => {
      for (let i = 1; i < 12; i++) {
        await sleep(60);
        await mesh.reload(versions[i % versions.length]);
        changes++;
      }
    })();
    const result = await runLoad(2500, 12, async (i) => {
      const res = await mesh.http('products').request({ path: `/x/${i}`, routeKey: String(i) });
      await res.body.dump();
      assert.equal(res.statusCode, 200);
    });
    await changer;
    assert.equal(changes, 11);
    assert.equal(result.errors.length, 0, `lost ${result.errors.length}: ${String(result.errors[0])}`);
    assert.ok(ss.every((s) => s.hits > 0), 'every endpoint served at some point');
  });

  it('a malformed file is refused at start naming the field, and on reload keeps the good config', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'trellis-cfg-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'mesh.yaml');
    await writeFile(file, serviceYaml('products', [{ address: '127.0.0.1:9' }], 'timeout: 2 sec'));
    await assert.rejects(meshClient({ config: file }), (err: unknown) => {
      assert.ok(err instanceof ConfigInvalidError);
      assert.equal(err.code, 'TRELLIS_CONFIG_INVALID');
      assert.match(err.message, /mesh\.yaml/);
      assert.match(err.message, /spec\.timeout/);
      assert.match(err.message, /2 sec/);
      return true;
    });

    const [s] = await startServers(1, 'good');
    assert.ok(s);
    cleanup.push(() => s.close());
    await writeFile(file, serviceYaml('products', [{ address: s.address }]));
    const logger = quietLogger();
    const mesh = await meshClient({ config: file, logger });
    cleanup.push(() => mesh.close());
    const errors: unknown[] = [];
    mesh.on('config-error', (e) => errors.push(e));
    await assert.rejects(mesh.reload(serviceYaml('products', [{ address: s.address }], 'loadBalancer: fastest')), (err: unknown) => isTrellisError(err, 'TRELLIS_CONFIG_INVALID') && /loadBalancer/.test((err as Error).message));
    assert.equal(errors.length, 1);
    assert.equal(mesh.configVersion, 1);
    const res = await mesh.http('products').request({ path: '/' });
    assert.equal(res.statusCode, 200);
    await res.body.dump();

    // The watched file: a bad edit is refused (logged), a good one applies.
    await writeFile(file, 'apiVersion: trellis/v1\nkind: Service\nmetadata: { name: products }\nspec: { endpoints: [ { address: nope } ] }\n');
    await sleep(1300);
    assert.equal(mesh.configVersion, 1);
    assert.ok(logger.messages.some((m) => /reload refused/.test(m)), logger.messages.join('\n'));
    await writeFile(file, serviceYaml('products', [{ address: s.address }], 'timeout: 3s'));
    const deadline = Date.now() + 4000;
    while (mesh.configVersion === 1 && Date.now() < deadline) await sleep(100);
    assert.equal(mesh.configVersion, 2);
  });
});
