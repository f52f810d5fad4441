/**
 * The examples run: each is started as a user would (`node --import tsx FILE`) and must exit 0
 * by itself with the expected output. docs/ quotes them verbatim (test/docs checks that).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runNode } from '../helpers/processes.js';

describe('examples', () => {
  it('quickstart makes one request and exits', async () => {
    const r = await runNode(['examples/quickstart.ts'], 20_000);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^200 hello from \/greeting/m);
  });

  it('the demo runs for a bounded time and its summary adds up against what the servers saw', async () => {
    // The banner always names the endpoints and the words "retries" and "breaker", so matching
    // those proved nothing. The summary's numbers are checked instead, with relations that hold
    // however loaded the machine is (under load the demo's breaker opens and most calls fail
    // fast, which is the mesh working): the caller's outcomes add up to its requests, the mesh
    // counted the same requests, no more answers were ok than the servers served, no more
    // attempts reached the servers than requests plus retries, and retries never surfaced more
    // 503s than the servers sent.
    // Ports moved by an offset of this process's own, so two suites can run at once.
    const r = await runNode(['examples/demo/main.ts', '--duration', '5', '--port-offset', String(100 + (process.pid % 300) * 20)], 40_000);
    assert.equal(r.code, 0, r.err);
    const at = r.out.indexOf('══ summary');
    assert.notEqual(at, -1, r.out);
    const summary = r.out.slice(at);
    const caller = /^products: (\d+) requests, (\d+) ok \([\d.]+%\)(?:, (\d+) failed \(([^)]*)\))?/m.exec(summary);
    assert.ok(caller, summary);
    const [requests, ok, failed] = [Number(caller[1]), Number(caller[2]), Number(caller[3] ?? 0)];
    assert.ok(requests > 0, summary);
    assert.equal(ok + failed, requests, summary);
    // Failure reasons are error codes or HTTP statuses, each with a count, summing to `failed`.
    const reasons = (caller[4] ?? '').split(', ').filter((x) => x !== '');
    for (const reason of reasons) assert.match(reason, /^(TRELLIS_[A-Z_]+|HTTP \d{3}) \d+$/, summary);
    assert.equal(reasons.reduce((n, x) => n + Number(x.split(' ').at(-1)), 0), failed, summary);
    const mesh = /^ {2}mesh: (\d+) requests, (\d+) retries/m.exec(summary);
    assert.ok(mesh, summary);
    assert.equal(Number(mesh[1]), requests, 'the mesh counted the requests the caller made');
    const retries = Number(mesh[2]);
    // One row per products server: `<name> <address> <version> <behaviour> N ok M 503 K cut`.
    const rows = [...summary.matchAll(/^ {2}products-\d .*?(\d+) ok\s+(\d+) 503\s+(\d+) cut$/gm)];
    assert.equal(rows.length, 3, summary);
    const served = rows.reduce((n, m) => n + Number(m[1]), 0);
    const server503 = rows.reduce((n, m) => n + Number(m[2]), 0);
    const reached = rows.reduce((n, m) => n + Number(m[1]) + Number(m[2]) + Number(m[3]), 0);
    assert.ok(ok <= served, `${ok} ok answers but the servers served ${served}`);
    assert.ok(reached <= requests + retries, `${reached} attempts reached the servers, more than ${requests} requests + ${retries} retries`);
    const caller503 = Number(reasons.find((x) => x.startsWith('HTTP 503'))?.split(' ').at(-1) ?? 0);
    assert.ok(caller503 <= server503, `the caller saw ${caller503} 503s, the servers sent ${server503}`);
    assert.match(r.out, /^mesh and servers closed\.$/m);
    // Every count column is per interval and says so; a row's 503s are part of what it served
    // in the same interval (it once compared a cumulative 503 count with a per-interval one).
    const header = r.out.split('\n').find((l) => l.includes('served/2s'));
    assert.ok(header !== undefined, r.out);
    const cols = header.trim().split(/\s{2,}/);
    assert.deepEqual(cols.slice(4, 7), ['served/2s', '503s/2s', 'cut/2s']);
    const intervalRows = r.out.split('\n').filter((l) => /^\s+127\.0\.0\.1:\d+\s/.test(l));
    assert.ok(intervalRows.length >= 5, r.out);
    for (const row of intervalRows) {
      const cells = row.trim().split(/\s{2,}/);
      const servedNow = Number(cells[4]);
      const errors = Number(cells[5]);
      assert.ok(Number.isInteger(servedNow) && Number.isInteger(errors), row);
      assert.ok(errors <= servedNow, `503s within what was served in the interval: ${row}`);
    }
  });

  it('the demo prints usage and exits 0 for --help, and 2 for an unknown option', async () => {
    const help = await runNode(['examples/demo/main.ts', '--help'], 20_000);
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /usage: npm run demo -- \[--duration SECONDS\]/);
    const bad = await runNode(['examples/demo/main.ts', '--durration', '5'], 20_000);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /usage:/);
  });
});
