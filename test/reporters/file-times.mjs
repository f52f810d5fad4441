// A test reporter: after the run, the slowest test files by the summed duration of their top-level tests
// (npm test prints it after the TAP output, so a CI log shows where the time went).
export default async function* fileTimes(source) {
  const per = new Map();
  for await (const ev of source) {
    if ((ev.type === 'test:pass' || ev.type === 'test:fail') && ev.data.nesting === 0) {
      const f = ev.data.file ?? '?';
      per.set(f, (per.get(f) ?? 0) + (ev.data.details?.duration_ms ?? 0));
    }
  }
  const rows = [...per].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((s, r) => s + r[1], 0);
  yield `# slowest test files (of ${rows.length}, ${(total / 1000).toFixed(0)} s in all)\n`;
  for (const [f, ms] of rows.slice(0, 25)) yield `# ${(ms / 1000).toFixed(1).padStart(6)} s  ${f.replace(process.cwd() + '/', '')}\n`;
}
