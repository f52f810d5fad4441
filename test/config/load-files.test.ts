/**
 * `loadConfig` over its source forms: a real file, several files merged, a relative path with
 * `baseDir`, YAML text, parsed objects; and the file problems (missing, a directory, too big,
 * not UTF-8) reported as ConfigInvalidError naming the file.
 */

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { CONFIG_LIMITS, loadConfig } from '../../src/config/index.js';
import { issueAt, issuesOfAsync, serviceYaml } from './helpers.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trellis-config-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('loads a real file, with lines in its messages', async () => {
  const file = join(dir, 'mesh.yaml');
  await writeFile(file, `${serviceYaml('products', 'endpoints: ["127.0.0.1:8081"]\ntimeout: 750ms')}`);
  const config = await loadConfig(file);
  assert.deepEqual(config.sources, [file]);
  assert.equal(config.services.get('products')?.timeoutMs, 750);

  const bad = join(dir, 'bad.yaml');
  await writeFile(bad, serviceYaml('products', 'timeout: 750 ms'));
  const issue = issueAt(await issuesOfAsync(() => loadConfig(bad)), 'spec.timeout');
  assert.deepEqual([issue.file, issue.document, issue.line], [bad, 0, 5]);
});

test('a missing file is a ConfigInvalidError naming the file', async () => {
  const missing = join(dir, 'nope.yaml');
  const issues = await issuesOfAsync(() => loadConfig(missing));
  assert.deepEqual(issues, [{ file: missing, document: 0, path: '', message: 'file not found' }]);
});

test('a missing file given by a relative path says where it was looked for', async () => {
  const issues = await issuesOfAsync(() => loadConfig('./no-such-dir-trellis/mesh.yml'));
  assert.equal(issues[0]?.message, `file not found (looked for ${resolve('no-such-dir-trellis/mesh.yml')})`);
});

test('a directory, an oversize file and invalid UTF-8 are refused', async () => {
  assert.match((await issuesOfAsync(() => loadConfig(dir)))[0]?.message ?? '', /directory/);
  const big = join(dir, 'big.yaml');
  await writeFile(big, Buffer.alloc(CONFIG_LIMITS.maxTextBytes + 10, 0x23));
  assert.match((await issuesOfAsync(() => loadConfig(big)))[0]?.message ?? '', /over the 4 MiB limit/);
  const latin1 = join(dir, 'latin1.yaml');
  await writeFile(latin1, Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]));
  assert.match((await issuesOfAsync(() => loadConfig(latin1)))[0]?.message ?? '', /not valid UTF-8/);
});

test('several files merge; cross-file duplicates name both files', async () => {
  await writeFile(join(dir, 'mesh-a.yaml'), `apiVersion: trellis/v1\nkind: Mesh\nmetadata: { name: m }\nspec: { trustDomain: a.org }\n---\n${serviceYaml('one', 'timeout: 1s')}`);
  await writeFile(join(dir, 'mesh-b.yaml'), serviceYaml('two', 'timeout: 2s'));
  const config = await loadConfig(['mesh-a.yaml', 'mesh-b.yaml'], { baseDir: dir });
  assert.deepEqual([...config.services.keys()], ['one', 'two']);
  assert.equal(config.mesh.trustDomain, 'a.org');
  assert.deepEqual(config.sources, [join(dir, 'mesh-a.yaml'), join(dir, 'mesh-b.yaml')]);

  await writeFile(join(dir, 'mesh-c.yaml'), `# again\n${serviceYaml('one', 'timeout: 3s')}`);
  const issue = issueAt(await issuesOfAsync(() => loadConfig(['mesh-a.yaml', 'mesh-c.yaml'], { baseDir: dir })), 'metadata.name');
  assert.equal(issue.file, join(dir, 'mesh-c.yaml'));
  assert.equal(issue.line, 4);
  assert.match(issue.message, new RegExp(`first defined in ${join(dir, 'mesh-a.yaml').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} document 1`));
});

test('YAML text, a parsed object and a list of objects', async () => {
  const text = serviceYaml('a', 'timeout: 1s');
  assert.equal((await loadConfig(text)).services.get('a')?.timeoutMs, 1000);
  assert.deepEqual((await loadConfig(text)).sources, ['<inline>']);
  // One line starting with apiVersion is text, not a path.
  const oneLine = await issuesOfAsync(() => loadConfig('apiVersion: trellis/v1'));
  assert.deepEqual([oneLine[0]?.file, oneLine[0]?.message], ['<inline>', 'missing kind (expected Mesh or Service)']);
  const doc = { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name: 'b' } };
  assert.ok((await loadConfig(doc)).services.has('b'));
  assert.ok((await loadConfig([doc])).services.has('b'));
  assert.equal((await loadConfig([])).services.size, 0);
  const mixed = await issuesOfAsync(() => loadConfig(['x.yaml', doc] as unknown as readonly string[]));
  assert.match(mixed[0]?.message ?? '', /either file paths or parsed documents/);
});
