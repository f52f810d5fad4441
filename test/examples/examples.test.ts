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

  it('the demo runs for a bounded time and prints endpoint, retry and breaker state', async () => {
    const r = await runNode(['examples/demo/main.ts', '--duration', '5'], 40_000);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /127\.0\.0\.1:708\d/);
    assert.match(r.out, /retr/i);
    assert.match(r.out, /breaker/i);
    // Every count column is per interval and says so; a row's 503s are part of what it served
    // in the same interval (it once compared a cumulative 503 count with a per-interval one).
    const header = r.out.split('\n').find((l) => l.includes('served/2s'));
    assert.ok(header !== undefined, r.out);
    const cols = header.trim().split(/\s{2,}/);
    assert.deepEqual(cols.slice(4, 7), ['served/2s', '503s/2s', 'cut/2s']);
    const rows = r.out.split('\n').filter((l) => /^\s+127\.0\.0\.1:70\d\d\s/.test(l) || /^\s+127\.0\.0\.1:709\d\s/.test(l));
    assert.ok(rows.length >= 5, r.out);
    for (const row of rows) {
      const cells = row.trim().split(/\s{2,}/);
      const served = Number(cells[4]);
      const errors = Number(cells[5]);
      assert.ok(Number.isInteger(served) && Number.isInteger(errors), row);
      assert.ok(errors <= served, `503s within what was served in the interval: ${row}`);
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
