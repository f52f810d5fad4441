/**
 * mesh.close() leaves nothing running: a process that used every part exits by itself.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';

const script = `
import http from 'node:http';
import { meshClient } from 'trellis';
const s = http.createServer((q, r) => r.end('ok'));
await new Promise((r) => s.listen(0, '127.0.0.1', r));
const addr = '127.0.0.1:' + s.address().port;
const yaml = 'apiVersion: trellis/v1\\nkind: Service\\nmetadata: { name: p }\\nspec:\\n  endpoints: [ { address: ' + addr + ' } ]\\n  circuitBreaker: { volumeThreshold: 5 }\\n';
const mesh = await meshClient({ config: yaml });
for (let i = 0; i < 20; i++) { const r = await mesh.http('p').request({ path: '/' }); await r.body.text(); }
const srv = await mesh.serve((q, r) => r.end('x'));
await mesh.close();
s.close();
console.log('closed');
`;

describe('mesh.close()', () => {
  it('lets the process exit on its own', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve(null);
      }, 10_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    assert.equal(code, 0, `exit code ${code}; stderr: ${err}`);
    assert.match(out, /closed/);
  });
});
