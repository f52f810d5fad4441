/**
 * The loader limits a caller sets for its loads (`loadConfig(source, { limits })`,
 * `meshClient({ configLimits })`, the control plane's `configLimits` and its CLI flags): each one
 * is honoured where the default would refuse (or accept), and a value that is not a whole number
 * from 1 to its ceiling is refused with TRELLIS_CONFIG_INVALID naming the option.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { meshClient, ConfigInvalidError } from 'trellis';
import { CONFIG_LIMIT_CEILINGS, CONFIG_LIMITS, loadConfig, parseConfigDocuments, parseConfigText } from '../../src/config/index.js';
import { startControlPlane } from '../../src/controlplane/control-plane.js';
import { call, startTestPlane } from '../controlplane/api-fixtures.js';
import { issueAt, issuesOf, issuesOfAsync } from './helpers.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

function service(name: string): { apiVersion: string; kind: string; metadata: { name: string }; spec: object } {
  return { apiVersion: 'trellis/v1', kind: 'Service', metadata: { name }, spec: { endpoints: [{ address: '127.0.0.1:9' }], timeout: '2s', retries: { attempts: 2, on: ['gateway-error'] }, routes: [{ name: 'api', match: { pathPrefix: ['/api'] } }, { name: 'default' }] } };
}

/** YAML text of `n` Service documents, each ~60 YAML nodes. */
function servicesYaml(n: number): string {
  const one = (i: number): string => `apiVersion: trellis/v1
kind: Service
metadata: { name: s${i} }
spec:
  endpoints: [{ address: "127.0.0.1:9", labels: { version: v1, zone: a } }, { address: "127.0.0.2:9", labels: { version: v2, zone: b } }]
  timeout: 2s
  retries: { attempts: 3, perTryTimeout: 500ms, on: [connect-failure, reset, gateway-error], backoff: { base: 25ms, max: 250ms } }
  circuitBreaker: { errorThresholdPercent: 50, volumeThreshold: 20, resetTimeout: 5s }
  outlierDetection: { consecutiveFailures: 5, ejectionTime: 10s, maxEjectedPercent: 50 }
  routes:
    - { name: api, match: { pathPrefix: [/api], methods: [GET, POST] }, timeout: 1s, backends: [{ subset: { version: v2 } }] }
    - { name: default }
`;
  return Array.from({ length: n }, (_, i) => one(i)).join('---\n');
}

test('the defaults are 10,000 documents, 100,000 YAML nodes and 4 MiB per text', () => {
  assert.equal(CONFIG_LIMITS.maxDocuments, 10_000);
  assert.equal(CONFIG_LIMITS.maxYamlNodes, 100_000);
  assert.equal(CONFIG_LIMITS.maxTextBytes, 4 * 1024 * 1024);
});

test('maxDocuments: lowered, a load over it is refused; raised, one over the default passes the count', async () => {
  const three = [service('a'), service('b'), service('c')];
  assert.match(issuesOf(() => parseConfigDocuments(three, '<inline>', { limits: { maxDocuments: 2 } }))[0]?.message ?? '', /more than 2 documents in this configuration \(maxDocuments\)/);
  assert.match((await issuesOfAsync(() => loadConfig(three, { limits: { maxDocuments: 2 } })))[0]?.message ?? '', /more than 2 documents/);
  assert.equal((await loadConfig(three, { limits: { maxDocuments: 3 } })).services.size, 3);
  // 10,001 (empty, so invalid) documents: refused for what they are, not for their number.
  const many = Array.from({ length: 10_001 }, () => ({}));
  const issues = issuesOf(() => parseConfigDocuments(many, '<inline>', { limits: { maxDocuments: 20_000 } }));
  assert.ok(issues.every((i) => !/maxDocuments/.test(i.message)), issues[0]?.message);
});

test('maxYamlNodes: 1,000 full Services as YAML are over the default node budget and load under a raised one', () => {
  const text = servicesYaml(1000);
  const refused = issuesOf(() => parseConfigText(text, 'mesh.yaml'));
  assert.match(refused[0]?.message ?? '', /more than 100000 YAML nodes .*\(maxYamlNodes\)/);
  const config = parseConfigText(text, 'mesh.yaml', { limits: { maxYamlNodes: 200_000 } });
  assert.equal(config.services.size, 1000);
  assert.equal(config.services.get('s999')?.routes[0]?.timeoutMs, 1000);
  // The token budget follows the node budget: the same text is not stopped by maxYamlTokens.
  assert.match(issuesOf(() => parseConfigText(text, 'mesh.yaml', { limits: { maxYamlNodes: 1000 } }))[0]?.message ?? '', /more than 1000 YAML nodes/);
});

test('maxTextBytes: a text or file over it is refused before parsing', async () => {
  const text = servicesYaml(3);
  assert.match(issuesOf(() => parseConfigText(text, 'small.yaml', { limits: { maxTextBytes: 1000 } }))[0]?.message ?? '', /over the 1000 bytes limit \(maxTextBytes\)/);
  const dir = await mkdtemp(join(tmpdir(), 'trellis-limits-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'mesh.yaml');
  await writeFile(file, text);
  const issues = await issuesOfAsync(() => loadConfig(file, { limits: { maxTextBytes: 1000 } }));
  assert.deepEqual([issues[0]?.file, /file is \d+ bytes, over the 1000 bytes limit \(maxTextBytes\)/.test(issues[0]?.message ?? '')], [file, true]);
  assert.equal((await loadConfig(file)).services.size, 3);
});

test('each limit at its exact value passes, and one under the input is refused naming the limit (and, for bytes, the size)', async () => {
  // maxTextBytes: a text of exactly the limit loads; one byte more is refused with both numbers.
  const text = servicesYaml(3);
  const bytes = Buffer.byteLength(text);
  assert.equal(parseConfigText(text, 'exact.yaml', { limits: { maxTextBytes: bytes } }).services.size, 3);
  assert.equal(issuesOf(() => parseConfigText(text, 'over.yaml', { limits: { maxTextBytes: bytes - 1 } }))[0]?.message, `configuration text is ${bytes} bytes, over the ${bytes - 1} bytes limit (maxTextBytes)`);
  const dir = await mkdtemp(join(tmpdir(), 'trellis-limits-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'mesh.yaml');
  await writeFile(file, text);
  assert.equal((await loadConfig(file, { limits: { maxTextBytes: bytes } })).services.size, 3);
  assert.match((await issuesOfAsync(() => loadConfig(file, { limits: { maxTextBytes: bytes - 1 } })))[0]?.message ?? '', new RegExp(`file is ${bytes} bytes, over the ${bytes - 1} bytes limit \\(maxTextBytes\\)`));
  // maxDocuments, in YAML: three documents under a limit of three load; under two, refused.
  assert.equal(parseConfigText(text, 'docs.yaml', { limits: { maxDocuments: 3 } }).services.size, 3);
  assert.match(issuesOf(() => parseConfigText(text, 'docs.yaml', { limits: { maxDocuments: 2 } }))[0]?.message ?? '', /^more than 2 documents in this configuration \(maxDocuments\)$/);
  // maxYamlNodes: the smallest budget that takes the text loads it; one node less is refused.
  const loads = (n: number): boolean => {
    try {
      parseConfigText(text, 'nodes.yaml', { limits: { maxYamlNodes: n } });
      return true;
    } catch (err) {
      if (err instanceof ConfigInvalidError && /\(maxYamlNodes\)/.test(err.issues[0]?.message ?? '')) return false;
      throw err;
    }
  };
  let lo = 1;
  let hi = 10_000;
  assert.ok(loads(hi) && !loads(lo));
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (loads(mid)) hi = mid;
    else lo = mid;
  }
  assert.equal(parseConfigText(text, 'nodes.yaml', { limits: { maxYamlNodes: hi } }).services.size, 3);
  assert.match(issuesOf(() => parseConfigText(text, 'nodes.yaml', { limits: { maxYamlNodes: hi - 1 } }))[0]?.message ?? '', new RegExp(`^more than ${hi - 1} YAML nodes .*\\(maxYamlNodes\\)`));
});

test('nonsense limits are refused with TRELLIS_CONFIG_INVALID naming the option', async () => {
  const bad: [unknown, string, RegExp][] = [
    [{ maxDocuments: 0 }, 'limits.maxDocuments', /whole number from 1 to 1000000, got 0/],
    [{ maxDocuments: -5 }, 'limits.maxDocuments', /got -5/],
    [{ maxYamlNodes: 1.5 }, 'limits.maxYamlNodes', /got 1.5/],
    [{ maxYamlNodes: Number.NaN }, 'limits.maxYamlNodes', /got NaN/],
    [{ maxTextBytes: Number.POSITIVE_INFINITY }, 'limits.maxTextBytes', /got Infinity/],
    [{ maxTextBytes: CONFIG_LIMIT_CEILINGS.maxTextBytes + 1 }, 'limits.maxTextBytes', /from 1 to 268435456/],
    [{ maxDocuments: '5000' }, 'limits.maxDocuments', /got "5000"/],
    [{ maxDocument: 5000 }, 'limits.maxDocument', /unknown limit \(did you mean "maxDocuments"\?\)/],
    [[5000], 'limits', /expected an object/],
    [7, 'limits', /expected an object/],
  ];
  for (const [limits, path, message] of bad) {
    const issues = issuesOf(() => parseConfigDocuments([service('a')], '<inline>', { limits: limits as never }));
    assert.match(issueAt(issues, path).message, message, JSON.stringify(limits));
    assert.equal(issueAt(issues, path).file, 'loadConfig options');
    await issuesOfAsync(() => loadConfig('/nonexistent/never-read.yaml', { limits: limits as never }));
  }
  // meshClient checks its configLimits with its other options, before anything starts.
  await assert.rejects(meshClient({ config: [service('a')], configLimits: { maxDocuments: 0 } }), (err: unknown) => {
    assert.ok(err instanceof ConfigInvalidError);
    assert.equal(err.code, 'TRELLIS_CONFIG_INVALID');
    assert.equal(err.issues[0]?.path, 'meshClient.configLimits.maxDocuments');
    return true;
  });
  // So does the control plane, before it touches its data directory.
  await assert.rejects(startControlPlane({ dataDir: '/nonexistent/cp', configLimits: { maxYamlNodes: -1 } }), (err: unknown) => err instanceof ConfigInvalidError && err.issues[0]?.path === 'configLimits.maxYamlNodes');
});

test('meshClient configLimits hold for the first load and for reloads', async () => {
  await assert.rejects(meshClient({ config: [service('a'), service('b'), service('c')], configLimits: { maxDocuments: 2 }, logger: { warn: () => {} } }), (err: unknown) => err instanceof ConfigInvalidError && /more than 2 documents/.test(err.issues[0]?.message ?? ''));
  const mesh = await meshClient({ config: [service('a')], configLimits: { maxDocuments: 2 }, logger: { warn: () => {} } });
  cleanup.push(() => mesh.close());
  await assert.rejects(mesh.reload([service('a'), service('b'), service('c')]), (err: unknown) => err instanceof ConfigInvalidError && /more than 2 documents/.test(err.issues[0]?.message ?? ''));
  await mesh.reload([service('a'), service('b')]);
  assert.deepEqual([...(mesh.config?.services.keys() ?? [])], ['a', 'b']);
});

test('the control plane validates applies (stored documents included) under its configLimits', async () => {
  const plane = await startTestPlane({ configLimits: { maxDocuments: 2 } });
  cleanup.push(() => plane.close());
  const apply = (docs: object[]): ReturnType<typeof call> => call(plane, 'POST', '/v1/apply', { token: plane.adminToken, contentType: 'application/json', body: JSON.stringify(docs) });
  assert.equal((await apply([service('a'), service('b')])).status, 200);
  // One more Service: the request's one plus the two stored make three.
  const refused = await apply([service('c')]);
  assert.equal(refused.status, 400);
  assert.match(refused.text, /more than 2 documents in this configuration \(maxDocuments\)/);
});
