/**
 * meshClient() refuses every mistake in its options with one TRELLIS_CONFIG_INVALID naming the
 * option, the value or the absolute path, and the fix; a missing or unmatched `service` is a
 * warning, not an error (a pure client has no Service document).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ConfigInvalidError, meshClient } from 'trellis';
import type { MeshClientOptions } from 'trellis';

const yaml = `apiVersion: trellis/v1
kind: Mesh
metadata: { name: default }
spec: { mtls: off }
---
apiVersion: trellis/v1
kind: Service
metadata: { name: checkout }
spec:
  endpoints: [ { address: 127.0.0.1:1 } ]
`;

function collect(): { warn(m: string): void; lines: string[] } {
  const lines: string[] = [];
  return { lines, warn: (m: string) => void lines.push(m) };
}

/** The single ConfigInvalidError meshClient throws for `options`, with its issues. */
async function refusal(options: unknown): Promise<ConfigInvalidError> {
  const err = await meshClient(options as MeshClientOptions).then(
    async (m) => {
      await m.close();
      return assert.fail('meshClient accepted the options');
    },
    (e: unknown) => e,
  );
  assert.ok(err instanceof ConfigInvalidError, `a ConfigInvalidError, got ${String(err)}`);
  return err;
}

describe('meshClient options', () => {
  let dir = '';
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'trellis-options-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses an unknown option with a did-you-mean', async () => {
    const err = await refusal({ service: 'checkout', config: yaml, confg: './mesh.yaml' });
    assert.equal(err.issues.length, 1);
    assert.equal(err.issues[0]?.path, 'meshClient.confg');
    assert.match(err.message, /unknown option \(did you mean "config"\?\)/);
  });

  it('refuses a tls block missing key, naming meshClient.tls.key and the fix (no TypeError)', async () => {
    const ca = path.join(dir, 'ca.pem');
    const cert = path.join(dir, 'svc.pem');
    await writeFile(ca, 'x');
    await writeFile(cert, 'x');
    const err = await refusal({ service: 'checkout', config: yaml, tls: { ca, cert } });
    assert.deepEqual(err.issues.map((i) => i.path), ['meshClient.tls.key']);
    assert.match(err.message, /missing; give the path of this workload's private key/);
  });

  it('reports a wrong tls path once, absolute, with the directory it resolved against', async () => {
    const lines = collect();
    const ca = path.join(dir, 'ca.pem');
    await writeFile(ca, 'x');
    const err = await refusal({ service: 'checkout', config: yaml, logger: lines, tls: { ca, cert: ca, key: 'nope/svc.key' } });
    assert.deepEqual(err.issues.map((i) => i.path), ['meshClient.tls.key']);
    const abs = path.resolve('nope/svc.key');
    assert.ok(err.message.includes(`file not found: ${abs}`), err.message);
    assert.ok(err.message.includes(`resolved against the working directory ${process.cwd()}`), err.message);
    assert.deepEqual(lines.lines, [], 'not also reported as a warning');
  });

  it('names the absolute path of a missing config file', async () => {
    const err = await refusal({ service: 'checkout', config: './no-such-mesh.yml' });
    assert.equal(err.issues[0]?.path, 'meshClient.config');
    assert.ok(err.message.includes(path.resolve('no-such-mesh.yml')), err.message);
  });

  it('refuses a bad service name, a bad dispatcher policy, and lists every problem at once', async () => {
    const err = await refusal({ service: 'Check Out', config: yaml, dispatcher: { unknownHosts: 'allow' }, labels: { version: 2 } });
    assert.deepEqual(err.issues.map((i) => i.path).sort(), ['meshClient.dispatcher.unknownHosts', 'meshClient.labels', 'meshClient.service']);
    assert.match(err.message, /expected 'refuse' or 'pass', got "allow"/);
  });

  it('warns (does not refuse) when service is missing, or close to a Service it does not match', async () => {
    const none = collect();
    const m1 = await meshClient({ config: yaml, logger: none });
    await m1.close();
    assert.equal(none.lines.filter((l) => /no `service` given/.test(l)).length, 1, none.lines.join('\n'));

    const typo = collect();
    const m2 = await meshClient({ service: 'chekout', config: yaml, logger: typo });
    await m2.close();
    assert.ok(typo.lines.some((l) => /"chekout" has no Service document \(did you mean "checkout"\?\)/.test(l)), typo.lines.join('\n'));

    const pure = collect();
    const m3 = await meshClient({ service: 'loadgen', config: yaml, logger: pure });
    await m3.close();
    assert.deepEqual(pure.lines, [], 'a pure client with no Service document of its own is fine');
  });
});
