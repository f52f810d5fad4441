/**
 * The Express and Fastify examples run as a user would (`node --import tsx FILE --smoke`), exit 0
 * by themselves, and show the verified peer, 403s that forged headers and `//` paths cannot
 * avoid, and the caller's deadline reaching the outbound call.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runNode } from '../helpers/processes.js';

describe('inbound examples', () => {
  for (const name of ['express', 'fastify']) {
    it(`examples/${name}/app.ts --smoke`, async () => {
      const r = await runNode([`examples/${name}/app.ts`, '--smoke'], 60_000);
      assert.equal(r.code, 0, r.err);
      assert.match(r.out, /^whoami as checkout: 200 \{"service":"checkout","spiffeId":"spiffe:\/\/example\.org\/svc\/checkout","verified":true\}$/m);
      const deadline = /^GET \/orders\/42 as checkout, 1500 ms deadline: 200 .*"deadlineMs":"(\d+)"/m.exec(r.out);
      assert.ok(deadline !== null, r.out);
      const left = Number(deadline[1]);
      assert.ok(left > 0 && left <= 1500, `inventory saw ${left} ms`);
      for (const line of ['DELETE /admin/cache as checkout', 'DELETE /admin/cache as checkout claiming to be ops', 'GET //admin/cache as checkout']) {
        assert.ok(r.out.includes(`${line}: 403 {"error":"TRELLIS_FORBIDDEN","service":"orders"}\n`), `${line}\n${r.out}`);
      }
      assert.match(r.out, /^DELETE \/admin\/cache as ops: 200 \{"cleared":true,"by":"ops"\}$/m);
    });
  }
});
