#!/usr/bin/env node
// Summarises Stryker JSON reports (reports/mutation/<scope>.json): per file the counts and the
// score (killed + timeout over all valid mutants, as Stryker's "total"), then the survivors.
//   node scripts/mutation-summary.mjs reports/mutation/tls.json [...]
import { readFileSync } from 'node:fs';

for (const reportFile of process.argv.slice(2)) {
  const report = JSON.parse(readFileSync(reportFile, 'utf8'));
  console.log(`# ${reportFile}`);
  for (const [file, { mutants, source }] of Object.entries(report.files)) {
    const count = (s) => mutants.filter((m) => m.status === s).length;
    const detected = count('Killed') + count('Timeout');
    const undetected = count('Survived') + count('NoCoverage');
    const score = (100 * detected) / (detected + undetected);
    console.log(
      `${file}: ${score.toFixed(1)}% (killed ${count('Killed')}, timeout ${count('Timeout')}, survived ${count('Survived')}, ` +
        `no coverage ${count('NoCoverage')}, compile errors ${count('CompileError')}, ignored ${count('Ignored')})`,
    );
    const lines = source.split('\n');
    for (const m of mutants.filter((x) => x.status === 'Survived' || x.status === 'NoCoverage')) {
      const { line, column } = m.location.start;
      const original = (lines[line - 1] ?? '').trim().slice(0, 110);
      console.log(`  ${m.status} ${m.mutatorName} ${line}:${column} -> ${JSON.stringify(m.replacement ?? '').slice(0, 70)} | ${original}`);
    }
  }
}
