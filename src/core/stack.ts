/**
 * A Stack is an immutable ordered list of modules, each `{ role, why, make(next) }`, outermost
 * first (after Finagle's Stack). It is built once per destination when configuration changes,
 * never per request; a disabled feature is simply absent, so the hot path carries no `if` for it.
 * `describe()` prints the order and each module's reason, for the CLI and dashboard.
 */
import type { Service } from './service.js';

export interface StackModule<Req, Res> {
  /** Stable name of the concern: `timeout`, `retry`, `breaker`, `balancer`, ... */
  readonly role: string;
  /** Why the module sits where it does ("must be above X because Y"). */
  readonly why: string;
  /** A short description of its parameters, for `describe()`. */
  readonly params?: string;
  make(next: Service<Req, Res>): Service<Req, Res>;
}

export class Stack<Req, Res> {
  readonly modules: readonly StackModule<Req, Res>[];

  constructor(modules: readonly StackModule<Req, Res>[] = []) {
    this.modules = Object.freeze([...modules]);
  }

  /** A new stack with `module` added below every existing module. */
  push(module: StackModule<Req, Res>): Stack<Req, Res> {
    return new Stack([...this.modules, module]);
  }

  /** A new stack without the module of the given role. */
  remove(role: string): Stack<Req, Res> {
    return new Stack(this.modules.filter((m) => m.role !== role));
  }

  /** A new stack with the module of the given role replaced. */
  replace(role: string, module: StackModule<Req, Res>): Stack<Req, Res> {
    return new Stack(this.modules.map((m) => (m.role === role ? module : m)));
  }

  roles(): string[] {
    return this.modules.map((m) => m.role);
  }

  /** Composes the modules around `terminal`, outermost first. */
  build(terminal: Service<Req, Res>): Service<Req, Res> {
    let svc = terminal;
    for (let i = this.modules.length - 1; i >= 0; i--) {
      const m = this.modules[i];
      if (m !== undefined) svc = m.make(svc);
    }
    return svc;
  }

  describe(): string {
    return this.modules
      .map((m, i) => `${String(i + 1).padStart(2)}. ${m.role}${m.params ? ` (${m.params})` : ''} — ${m.why}`)
      .join('\n');
  }
}
