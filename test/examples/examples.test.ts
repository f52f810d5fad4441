/**
 * The examples run: each is started as a user would (`node --import tsx FILE`) and must exit 0
 * by itself with the expected output. docs/ quotes them verbatim (test/docs checks that).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runNode } from '../helpers/processes.js';

describe('examples', () => {
  it('quickstart makes one request and exits', async () => {
    const r = await runNode(['examples/quickstart.ts'], 20_000);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^200 hello from \/greeting/m);
  });

  it('the demo runs the shop on a control plane for a bounded time, and what it printed adds up', { timeout: 300_000 }, async () => {
    // Judged by what happened, never by timing (a loaded 2-core machine starts seven processes
    // slowly): the load generator's outcomes add up; products v2 answered nothing before the
    // canary apply (weight 0) and, once enough answers came after it, some; trellis stat printed
    // the mesh's traffic; an outage of the failing instance during the traffic showed as retries
    // or ejections; and every process the demo started is gone, as is its temporary directory.
    // The control plane's ports are moved by an offset of this process's own, so two suites can run at once.
    const r = await runNode(['examples/demo/main.ts', '--duration', '20', '--port-offset', String(100 + (process.pid % 300) * 20)], 240_000);
    assert.equal(r.code, 0, r.out + r.err);
    const at = r.out.indexOf('══ summary');
    assert.notEqual(at, -1, r.out + r.err);
    const summary = r.out.slice(at);
    const caller = /^loadgen -> frontend: (\d+) requests, (\d+) ok \([\d.]+%\), (\d+) failed(?: \(([^)]*)\))?/m.exec(summary);
    assert.ok(caller, summary);
    const [requests, ok, failed] = [Number(caller[1]), Number(caller[2]), Number(caller[3])];
    assert.ok(ok > 0, summary);
    assert.equal(ok + failed, requests, summary);
    const reasons = (caller[4] ?? '').split(', ').filter((x) => x !== '');
    for (const reason of reasons) assert.match(reason, /^(TRELLIS_[A-Z_]+|HTTP \d{3}|[A-Za-z_]+) \d+$/, summary);
    assert.equal(reasons.reduce((n, x) => n + Number(x.split(' ').at(-1)), 0), failed, summary);

    const split = /^ {2}products answered: before the canary v1 (\d+) v2 (\d+); after it v1 (\d+) v2 (\d+)$/m.exec(summary);
    assert.ok(split, summary);
    const [, beforeV1, beforeV2, afterV1, afterV2] = split.map(Number) as [number, number, number, number, number];
    assert.equal(beforeV2, 0, 'v2 answered before the canary gave it any weight');
    assert.ok(beforeV1 + afterV1 + afterV2 <= ok, summary);
    assert.match(r.out, /canary: service\/products updated/);
    if (afterV1 + afterV2 >= 40) assert.ok(afterV2 > 0, `after the canary, ${afterV1 + afterV2} answers and none from v2`);

    // trellis stat, as printed every 5 s, showed products serving at least once.
    assert.match(r.out, /^\$ trellis stat --window 10s\nNAME +INSTANCES +SUCCESS/m);
    assert.match(r.out, /^products +3 +[\d.]+% +[\d.]+rps/m, r.out);

    // The failing instance: when a whole outage (start to recovery) fell inside the traffic, the
    // frontend retried or ejected it. (An outage starting in the last moments of traffic — the
    // instance's schedule starts when it does, which a loaded machine shifts — may see no request.)
    const traffic = r.out.slice(r.out.indexOf('── t='), r.out.indexOf('══ summary'));
    const mesh = /^ {2}frontend -> products: (\d+) retries, (\d+) ejections$/m.exec(summary);
    assert.ok(mesh, summary);
    if (/products-v1b starts failing[\s\S]*products-v1b recovers/.test(traffic)) assert.ok(Number(mesh[1]) + Number(mesh[2]) > 0, summary);

    // Nothing left behind.
    const stopped = /^stopped (\d+) processes \(([\d, ]+)\), 0 left; removed (\S+)$/m.exec(r.out);
    assert.ok(stopped, r.out);
    assert.equal(Number(stopped[1]), 6);
    for (const pid of (stopped[2] as string).split(', ').map(Number)) {
      assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is still running`);
    }
    assert.equal(existsSync(stopped[3] as string), false);
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
