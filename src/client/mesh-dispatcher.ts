/**
 * `mesh.dispatcher`: an undici Dispatcher that sends `http://<service>/...` through the mesh and
 * every other origin through an ordinary undici Agent, untouched. With
 * `setGlobalDispatcher(mesh.dispatcher)` (the application's choice — Trellis never installs it
 * by itself), Node's built-in fetch and undici's request()/fetch() reach mesh services by name.
 *
 * Which origins go through the mesh, which are refused and which pass: dispatch-origin.ts.
 * Upgrades (undici's upgrade(), its WebSocket) to a service go through dispatch-upgrade.ts.
 */
import { Agent, Dispatcher } from 'undici';
import { decideOrigin, originShape } from './dispatch-origin.js';
import type { MeshDispatcherOptions, OriginDecision, OriginShape, UnknownHostPolicy } from './dispatch-origin.js';
import type { Destinations } from './destinations.js';
import { failHandler } from './dispatch-bridge.js';
import { dispatchToService } from './core-dispatcher.js';
import { invalidRequestArgument } from './request-validation.js';
import type { UpgradeDispatch } from './dispatch-upgrade.js';

export class MeshDispatcher extends Dispatcher {
  readonly #destinations: Destinations;
  readonly #fallback: Dispatcher;
  readonly #ownsFallback: boolean;

  readonly #unknownHosts: UnknownHostPolicy;
  readonly #upgrades: UpgradeDispatch | undefined;

  constructor(destinations: Destinations, options: MeshDispatcherOptions = {}, fallback?: Dispatcher, upgrades?: UpgradeDispatch) {
    super();
    this.#upgrades = upgrades;
    this.#destinations = destinations;
    this.#unknownHosts = options.unknownHosts ?? 'refuse';
    this.#fallback = fallback ?? new Agent();
    this.#ownsFallback = fallback === undefined;
  }

  /** Origin strings already parsed (null: not a URL), so fetch() does not re-parse URLs. */
  readonly #shapes = new Map<string, OriginShape | null>();

  /** What to do with an origin, against the configuration in force now. */
  #decide(origin: Dispatcher.DispatchOptions['origin']): OriginDecision {
    if (origin === undefined) return { kind: 'pass' };
    let shape: OriginShape | null | undefined;
    if (typeof origin === 'string') {
      shape = this.#shapes.get(origin);
      if (shape === undefined) {
        shape = originShape(origin);
        if (this.#shapes.size >= 1024) this.#shapes.clear();
        this.#shapes.set(origin, shape);
      }
    } else {
      shape = originShape(origin);
    }
    if (shape === null) return { kind: 'pass' };
    return decideOrigin(shape, this.#isService, this.#serviceNames, this.#unknownHosts);
  }

  // Made once: the decision runs on every request.
  readonly #isService = (name: string): boolean => this.#destinations.get(name) !== undefined;
  readonly #serviceNames = (): string[] => this.#destinations.names();

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const decision = this.#decide(opts.origin);
    if (decision.kind === 'pass') return this.#fallback.dispatch(opts, handler);
    if (decision.kind === 'refuse') {
      // Refused before anything left the process: reported as the request's error (fetch wraps
      // it in `TypeError: fetch failed`; isTrellisError and trellisErrorOf look through that).
      failHandler(handler, decision.error);
      return true;
    }
    const service = decision.service;
    const dest = this.#destinations.get(service);
    if (dest === undefined) return this.#fallback.dispatch(opts, handler);
    // Refused before the stack, through the handler's error path (as undici's own dispatchers do).
    const invalid = invalidRequestArgument(opts, service);
    if (invalid !== undefined) {
      this.#destinations.invalidArgument(service, opts.method);
      failHandler(handler, invalid);
      return true;
    }
    // The caller's handler goes straight down the hot path (or, for a destination it cannot carry
    // yet, through the promise stack and a bridge).
    return dispatchToService(this.#destinations, service, opts, handler, undefined, this.#upgrades);
  }

  override async close(): Promise<void> {
    if (this.#ownsFallback) await this.#fallback.close();
  }

  override async destroy(): Promise<void> {
    if (this.#ownsFallback) await this.#fallback.destroy();
  }
}
