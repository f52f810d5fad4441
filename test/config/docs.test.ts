/**
 * Every ```yaml block in docs/configuration.md is a complete configuration that loads: the
 * documentation cannot drift from what the loader accepts.
 */

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config/index.js';

const DOC = fileURLToPath(new URL('../../docs/configuration.md', import.meta.url));

test('every yaml block in docs/configuration.md loads', async () => {
  const text = await readFile(DOC, 'utf8');
  const blocks = [...text.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1] ?? '');
  assert.ok(blocks.length >= 3, 'the page has examples');
  for (const [i, block] of blocks.entries()) {
    await assert.doesNotReject(loadConfig(block), `yaml block ${i + 1}`);
  }
});

test('the complete example in the docs sets every Service field', async () => {
  const text = await readFile(DOC, 'utf8');
  const block = /^```yaml\n([\s\S]*?)^```$/m.exec(text)?.[1] ?? '';
  const products = (await loadConfig(block)).services.get('products');
  assert.ok(products);
  assert.deepEqual(products.endpoints?.map((e) => `${e.host}:${e.port}`), ['127.0.0.1:8081', '::1:8082', '127.0.0.1:8083']);
  assert.ok(products.circuitBreaker && products.rateLimit && products.inbound?.authorization);
  assert.equal(products.routes[0]?.rateLimit?.scope, 'global');
  assert.deepEqual(products.retries.on, ['connect-failure', 'reset', 'gateway-error', '409']);
});
