/**
 * The gRPC example runs as a user would run it and exits by itself (test/examples covers the
 * other examples; this one lives beside the gRPC tests until that file lists it).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('examples/grpc', () => {
  it('the greeter makes six calls, spread over three servers, and exits 0', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'examples/grpc/greeter.ts'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('exit', (c) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    assert.equal(code, 0, err);
    const lines = out.trim().split('\n');
    assert.equal(lines.length, 6, out);
    assert.equal(new Set(lines.map((l) => l.replace(/^.* from :/, ''))).size, 3, 'spread over three servers');
  });
});
