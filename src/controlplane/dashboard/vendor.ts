/**
 * The browser libraries the dashboard serves, read once from the installed npm packages (no
 * CDN: it works on a machine with no internet). Resolved from this module's location, so the
 * copies are the ones this package depends on, whatever the working directory.
 *
 * Measured (minified, then gzip -9): uPlot 1.6 51 kB (22 kB) + its CSS 2 kB; @dagrejs/dagre 3.1
 * (graphlib included) 49 kB (17 kB). cytoscape, the usual alternative for the graph, is several
 * times larger and brings its own renderer; dagre only lays out, and the page draws the SVG.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';

export interface VendorFile {
  readonly body: Buffer;
  readonly type: string;
}

/**
 * This module's own file (a `file:` URL in the ESM build, a path in the CommonJS one), from V8's
 * structured stack trace: `import.meta.url` cannot be written in a file the CommonJS build
 * compiles (control-plane.ts, which `require('trellis')` reaches, starts the dashboard).
 */
function ownFile(): string {
  const prepare = Error.prepareStackTrace;
  let file: string | undefined;
  try {
    Error.prepareStackTrace = (_err, frames) => frames;
    const holder: { stack?: unknown } = {};
    Error.captureStackTrace(holder, ownFile);
    const frames = holder.stack as { getFileName(): string | null | undefined }[] | undefined;
    file = frames?.[0]?.getFileName() ?? undefined;
  } finally {
    Error.prepareStackTrace = prepare;
  }
  if (file === undefined) throw new Error('the dashboard cannot tell where its package is installed (no file name in the stack)');
  return file;
}

/** URL path (under /vendor/) → file. */
export async function loadVendorFiles(): Promise<Map<string, VendorFile>> {
  const require = createRequire(ownFile());
  const uplot = path.dirname(require.resolve('uplot/package.json'));
  const dagre = path.dirname(require.resolve('@dagrejs/dagre/package.json'));
  const files: [string, string, string][] = [
    ['uplot.js', path.join(uplot, 'dist/uPlot.iife.min.js'), 'text/javascript; charset=utf-8'],
    ['uplot.css', path.join(uplot, 'dist/uPlot.min.css'), 'text/css; charset=utf-8'],
    ['dagre.js', path.join(dagre, 'dist/dagre.min.js'), 'text/javascript; charset=utf-8'],
  ];
  const out = new Map<string, VendorFile>();
  for (const [name, file, type] of files) out.set(name, { body: await readFile(file), type });
  return out;
}
