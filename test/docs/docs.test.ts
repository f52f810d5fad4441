/**
 * Keeps docs/ honest: the error table lists exactly the exported codes, every YAML example
 * loads, and every TypeScript example that names a file in examples/ is that file, verbatim
 * (the examples themselves are run by test/examples).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as trellis from 'trellis';
import { ERROR_CODES, loadConfig } from 'trellis';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const docsDir = path.join(root, 'docs');

async function docs(): Promise<{ name: string; text: string }[]> {
  const names = (await readdir(docsDir)).filter((n) => n.endsWith('.md'));
  return Promise.all(names.map(async (name) => ({ name, text: await readFile(path.join(docsDir, name), 'utf8') })));
}

function blocks(text: string, lang: string): { body: string; info: string }[] {
  const re = new RegExp('```' + lang + '([^\\n]*)\\n([\\s\\S]*?)```', 'g');
  return [...text.matchAll(re)].map((m) => ({ info: (m[1] ?? '').trim(), body: m[2] ?? '' }));
}

describe('docs', () => {
  it('errors.md lists every error code, and only those', async () => {
    const text = await readFile(path.join(docsDir, 'errors.md'), 'utf8');
    const listed = [...text.matchAll(/^\| `(TRELLIS_[A-Z_]+)` \|/gm)].map((m) => m[1]);
    assert.deepEqual([...listed].sort(), Object.keys(ERROR_CODES).sort());
  });

  it('every yaml example in docs/ loads', async () => {
    let count = 0;
    for (const d of await docs()) {
      for (const b of blocks(d.text, 'yaml')) {
        if (b.info.includes('invalid')) continue;
        count++;
        await assert.doesNotReject(loadConfig(b.body), `${d.name}: ${b.body.slice(0, 80)}`);
      }
    }
    assert.ok(count > 0);
  });

  it('every example file a doc quotes is quoted verbatim', async () => {
    for (const d of await docs()) {
      for (const b of blocks(d.text, 'ts')) {
        const m = /file=(\S+)/.exec(b.info);
        if (m?.[1] === undefined) continue;
        const file = await readFile(path.join(root, m[1]), 'utf8');
        assert.equal(b.body.trim(), file.trim(), `${d.name} quotes ${m[1]}`);
      }
    }
  });

  it('docs, README and examples/README link only to files in the repository, never to design files outside it', async () => {
    const pages = [...(await docs()).map((d) => ({ file: path.join(docsDir, d.name), text: d.text }))];
    for (const f of ['README.md', 'examples/README.md']) pages.push({ file: path.join(root, f), text: await readFile(path.join(root, f), 'utf8') });
    let links = 0;
    for (const p of pages) {
      assert.doesNotMatch(p.text, /\b(DESIGN|RELIABILITY|STYLE)\.md\b/, `${path.relative(root, p.file)} names a design file that is not in the repository`);
      for (const m of p.text.matchAll(/\]\(([^)\s#]+)(#[^)\s]*)?\)/g)) {
        const target = m[1] ?? '';
        if (/^[a-z]+:/.test(target)) continue;
        links++;
        await assert.doesNotReject(access(path.resolve(path.dirname(p.file), target)), `${path.relative(root, p.file)} links to ${target}, which does not exist`);
      }
    }
    assert.ok(links > 10);
  });

  it('the generated API reference (npm run docs:api) lists every runtime export', async () => {
    const index = await readFile(path.join(docsDir, 'reference/README.md'), 'utf8');
    const missing = Object.keys(trellis).filter((name) => !index.includes(`[${name.replaceAll('_', '\\_')}]`));
    assert.deepEqual(missing, [], 'run npm run docs:api after changing the public API');
  });
});
