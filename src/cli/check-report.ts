/**
 * The `trellis check` report, as `linkerd check` prints it: sections, one line per check —
 * `√` passed, `‼` warning (does not fail), `×` failed, with the reason indented below — and a
 * final verdict. The exit code is 1 when any check failed.
 */
export type CheckResult = { readonly kind: 'pass' | 'warn' | 'fail'; readonly title: string; readonly detail?: readonly string[] };

export class CheckReport {
  #failed = 0;
  #warned = 0;
  readonly #out: (text: string) => void;

  constructor(out: (text: string) => void) {
    this.#out = out;
  }

  section(name: string): void {
    this.#out(`\n${name}\n${'-'.repeat(name.length)}\n`);
  }

  add(r: CheckResult): void {
    const mark = r.kind === 'pass' ? '√' : r.kind === 'warn' ? '‼' : '×';
    if (r.kind === 'fail') this.#failed++;
    if (r.kind === 'warn') this.#warned++;
    this.#out(`${mark} ${r.title}\n`);
    for (const d of r.detail ?? []) this.#out(`    ${d}\n`);
  }

  pass(title: string): void {
    this.add({ kind: 'pass', title });
  }

  warn(title: string, detail: readonly string[] = []): void {
    this.add({ kind: 'warn', title, detail });
  }

  fail(title: string, detail: readonly string[] = []): void {
    this.add({ kind: 'fail', title, detail });
  }

  get failed(): number {
    return this.#failed;
  }

  /** Prints the verdict and returns the exit code. */
  finish(): number {
    this.#out(`\nStatus check results are ${this.#failed > 0 ? `× (${this.#failed} failed${this.#warned > 0 ? `, ${this.#warned} warnings` : ''})` : `√${this.#warned > 0 ? ` (${this.#warned} warnings)` : ''}`}\n`);
    return this.#failed > 0 ? 1 : 0;
  }
}
