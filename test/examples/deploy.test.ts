/**
 * The deployment examples of docs/deployment.md: the shared mesh.yaml and the one inside the
 * Kubernetes ConfigMap are valid configurations, the compose file mounts the shared file into
 * every service, and examples/deploy/main.ts (the entry point they all run) serves from its
 * environment and exits 0 on SIGTERM after draining, as docker, systemd and Kubernetes stop it.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadConfig } from 'trellis';

const root = fileURLToPath(new URL('../..', import.meta.url));
const deploy = path.join(root, 'examples/deploy');

describe('deployment examples', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'trellis-deploy-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the shared mesh.yaml is valid and names every service the compose file runs', async () => {
    const config = await loadConfig(path.join(deploy, 'mesh.yaml'));
    const compose = parseAllDocuments(readFileSync(path.join(deploy, 'compose/docker-compose.yaml'), 'utf8'))[0]?.toJS() as {
      services: Record<string, { environment: { TRELLIS_SERVICE: string }; volumes: string[] }>;
    };
    for (const [name, svc] of Object.entries(compose.services)) {
      assert.equal(svc.environment.TRELLIS_SERVICE, name);
      assert.ok(config.services.has(name), `mesh.yaml has a Service document for ${name}`);
      assert.ok(svc.volumes.includes('../mesh.yaml:/etc/trellis/mesh.yaml:ro'), `${name} mounts the shared mesh.yaml`);
    }
  });

  it("the Kubernetes ConfigMap's mesh.yaml is valid and the Deployment reads it from a directory mount", async () => {
    const docs = parseAllDocuments(readFileSync(path.join(deploy, 'kubernetes/shop.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
    const cm = docs.find((d) => d['kind'] === 'ConfigMap') as { data: { 'mesh.yaml': string } };
    const config = await loadConfig(cm.data['mesh.yaml']);
    assert.equal(config.mesh.trustDomain, 'shop.example');
    assert.ok(config.services.has('products'));
    const dep = docs.find((d) => d['kind'] === 'Deployment') as {
      spec: { template: { spec: { containers: { env: { name: string; value: string }[]; volumeMounts: { name: string; mountPath: string; subPath?: string }[] }[] } } };
    };
    const c = dep.spec.template.spec.containers[0];
    assert.ok(c !== undefined);
    const configPath = c.env.find((e) => e.name === 'TRELLIS_CONFIG')?.value ?? '';
    const mount = c.volumeMounts.find((m) => m.name === 'mesh');
    assert.equal(mount?.subPath, undefined, 'a subPath mount is never updated by the kubelet');
    assert.equal(path.dirname(configPath), mount?.mountPath);
  });

  it('main.ts serves from its environment and exits 0 on SIGTERM', async () => {
    const config = path.join(dir, 'mesh.yaml');
    writeFileSync(config, 'apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: default }\nspec: { mtls: off }\n---\napiVersion: trellis/v1\nkind: Service\nmetadata: { name: products }\nspec:\n  endpoints: [ 127.0.0.1:9 ]\n');
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(deploy, 'main.ts')], {
      cwd: root,
      env: { ...process.env, TRELLIS_SERVICE: 'products', TRELLIS_CONFIG: config, PORT: '0', HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const address = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /serving on (\S+)/.exec(out);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      void exited.then((code) => reject(new Error(`main.ts exited (${code}) before serving: ${err}`)));
    });
    const res = await fetch(`http://${address}/hello`);
    assert.deepEqual(await res.json(), { service: 'products', path: '/hello', caller: 'unknown' });
    child.kill('SIGTERM');
    assert.equal(await exited, 0, err);
    clearTimeout(killer);
  });
});
