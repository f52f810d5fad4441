/**
 * What hostile configuration costs to refuse: each shape from test/config/hostile-yaml.ts (all
 * just under the 4 MiB text limit) is parsed in its own child process, and the bench prints
 * the wall time of `parseConfigText`, the child's peak RSS above its RSS just before parsing,
 * and the outcome (the first issue, or how the process died). The numbers in
 * docs/configuration.md ("Limits and validation") come from here.
 *
 * Run: node --import tsx bench/config-limits.ts [--heap 256] [--timeout 120] [shape ...]
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const self = fileURLToPath(import.meta.url);

async function child(shape: string): Promise<void> {
  const { HOSTILE_SHAPES } = await import('../test/config/hostile-yaml.js');
  const { parseConfigText } = await import('../src/config/load.js');
  const make = HOSTILE_SHAPES[shape];
  if (make === undefined) throw new Error(`unknown shape ${shape}`);
  const text = make();
  // Let the generator's garbage go before measuring.
  (globalThis as { gc?: () => void }).gc?.();
  const rssBefore = process.memoryUsage().rss;
  const started = performance.now();
  let outcome: string;
  try {
    parseConfigText(text, `${shape}.yaml`);
    outcome = 'accepted';
  } catch (err) {
    const issues = (err as { issues?: { path: string; message: string }[] }).issues;
    outcome = issues?.[0] === undefined ? `threw ${String(err)}` : `refused: ${issues[0].path || '(document)'}: ${issues[0].message}`;
  }
  const ms = performance.now() - started;
  const peak = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(JSON.stringify({ bytes: Buffer.byteLength(text), ms, rssBefore, peak, outcome }));
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { heap: { type: 'string' }, timeout: { type: 'string', default: '120' }, child: { type: 'string' } },
  });
  if (values.child !== undefined) return child(values.child);
  const { HOSTILE_SHAPES } = await import('../test/config/hostile-yaml.js');
  const shapes = positionals.length > 0 ? positionals : Object.keys(HOSTILE_SHAPES);
  const heapArgs = values.heap === undefined ? [] : [`--max-old-space-size=${values.heap}`];
  console.log(`| shape | bytes | time | peak RSS − RSS before | outcome |`);
  console.log(`|---|---|---|---|---|`);
  for (const shape of shapes) {
    const proc = spawn(process.execPath, [...heapArgs, '--expose-gc', '--import', 'tsx', self, '--child', shape], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let errText = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (errText += d.toString()));
    const started = performance.now();
    const timer = setTimeout(() => proc.kill('SIGKILL'), Number(values.timeout) * 1000);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => proc.on('close', (c, s) => resolve([c, s])));
    clearTimeout(timer);
    if (code !== 0) {
      const why = signal === 'SIGKILL' ? `killed after ${values.timeout} s` : /heap out of memory/.test(errText) ? 'crashed: heap out of memory' : `exit ${code ?? signal}: ${errText.trim().split('\n').pop() ?? ''}`;
      console.log(`| ${shape} | | ${((performance.now() - started) / 1000).toFixed(1)} s (process) | | ${why} |`);
      continue;
    }
    const r = JSON.parse(out) as { bytes: number; ms: number; rssBefore: number; peak: number; outcome: string };
    const mb = (n: number): string => `${(n / 1024 / 1024).toFixed(0)} MB`;
    const time = r.ms >= 1000 ? `${(r.ms / 1000).toFixed(1)} s` : `${r.ms.toFixed(0)} ms`;
    console.log(`| ${shape} | ${r.bytes} | ${time} | ${mb(Math.max(0, r.peak - r.rssBefore))} | ${r.outcome.slice(0, 110)} |`);
  }
}

await main();
