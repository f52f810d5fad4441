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
  });
});
