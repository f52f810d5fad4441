/**
 * Keeps docs/control-plane.md honest: every ```sh test block runs, in order, in one directory,
 * with bash (-euo pipefail) against a real control plane on 127.0.0.1 (CP, TRELLIS_ADMIN_TOKEN
 * set as the page says), and must exit 0; when a ```json block follows it, the answer must have
 * that shape (the same keys, recursively, and the same JSON types; values differ run to run).
 * The page's REST table must list every route the control plane registers.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { KEYS } from '../../src/controlplane/store/store.js';
import { startTestPlane, type TestPlane } from './api-fixtures.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

interface Example {
  readonly script: string;
  readonly json: string | undefined;
  readonly line: number;
}

function examples(text: string): Example[] {
  const out: Example[] = [];
  const re = /```sh test\n([\s\S]*?)```\n(?:\s*\n)*(```json\n([\s\S]*?)```)?/g;
  for (const m of text.matchAll(re)) out.push({ script: m[1] ?? '', json: m[3], line: text.slice(0, m.index).split('\n').length });
  return out;
}

function shapeProblem(actual: unknown, documented: unknown, path = '$'): string | undefined {
  const type = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
  if (type(actual) !== type(documented)) return `${path}: documented ${type(documented)}, got ${type(actual)}`;
  if (Array.isArray(actual) && Array.isArray(documented)) {
    if (actual.length === 0 || documented.length === 0) return undefined;
    return shapeProblem(actual[0], documented[0], `${path}[0]`);
  }
  if (type(actual) === 'object') {
    const a = actual as Record<string, unknown>;
    const d = documented as Record<string, unknown>;
    const ak = Object.keys(a).sort();
    const dk = Object.keys(d).sort();
    if (ak.join() !== dk.join()) return `${path}: documented keys ${dk.join(', ')}; got ${ak.join(', ')}`;
    for (const k of ak) {
      const p = shapeProblem(a[k], d[k], `${path}.${k}`);
      if (p !== undefined) return p;
    }
  }
  return undefined;
}

function missingTools(): string[] {
  return ['bash', 'curl', 'jq', 'openssl', 'sha256sum'].filter((t) => {
    try {
      execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
}

describe('docs/control-plane.md', () => {
  let plane: TestPlane;
  let cwd: string;
  before(async () => {
    plane = await startTestPlane();
    cwd = await mkdtemp(join(tmpdir(), 'trellis-cp-docs-'));
    // One registered instance, as the sync part would write it, so the registry example has an entry.
    await plane.cp.store.commit([
      { type: 'put', key: KEYS.instance('products', 'i-1'), value: { id: 'i-1', service: 'products', labels: { version: 'v1' }, endpoints: [{ address: '127.0.0.1:8081', protocol: 'http' }], replica: plane.cp.replicaId, connectedAt: Date.now(), certificateNotAfter: Date.now() + 3_600_000, agent: 'trellis/0.1.0' } },
      { type: 'put', key: KEYS.instanceStatus('products', 'i-1'), value: { id: 'i-1', service: 'products', sent: '2', acked: '2', ackedAt: Date.now(), clockSkewMs: 3, lastSeen: Date.now() } },
    ]);
  });
  after(async () => {
    await plane.close();
    await rm(cwd, { recursive: true, force: true });
  });

  it('every curl example runs against a real control plane and answers the shape shown', async (t) => {
    const missing = missingTools();
    if (missing.length > 0) {
      t.skip(`needs ${missing.join(', ')} on PATH`);
      return;
    }
    const text = await readFile(join(root, 'docs/control-plane.md'), 'utf8');
    const list = examples(text);
    assert.ok(list.length >= 10, `found ${list.length} examples`);
    for (const ex of list) {
      const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
        execFile('bash', ['-euo', 'pipefail', '-c', ex.script], { cwd, env: { PATH: process.env['PATH'] ?? '', CP: plane.cp.url, TRELLIS_ADMIN_TOKEN: plane.adminToken }, timeout: 30_000 }, (err, out, errOut) => {
          done({ code: err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1, stdout: out, stderr: errOut });
        });
      });
      assert.equal(code, 0, `docs/control-plane.md:${ex.line} exited ${code}: ${stderr}${stdout}`);
      if (ex.json === undefined) continue;
      let actual: unknown;
      try {
        actual = JSON.parse(stdout);
      } catch {
        assert.fail(`docs/control-plane.md:${ex.line} printed no JSON: ${stdout.slice(0, 300)}`);
      }
      const problem = shapeProblem(actual, JSON.parse(ex.json));
      assert.equal(problem, undefined, `docs/control-plane.md:${ex.line}: ${problem}\nactual: ${stdout.slice(0, 600)}`);
    }
  });

  it('the REST table lists every route', async () => {
    const text = await readFile(join(root, 'docs/control-plane.md'), 'utf8');
    for (const route of ['GET /v1/ca', 'POST /v1/certificates', 'POST /v1/tokens', 'DELETE /v1/tokens/JTI', 'POST /v1/apply', 'GET /v1/mesh', 'GET /v1/services', 'GET /v1/services/NAME', 'DELETE /v1/services/NAME', 'GET /v1/instances', 'GET /v1/status', 'POST /v1/stream', 'GET /metrics']) {
      assert.ok(text.includes(`\`${route}`), `docs/control-plane.md does not list ${route}`);
    }
  });
});
