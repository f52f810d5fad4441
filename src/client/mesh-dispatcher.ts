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
import { failHandler } from './caller-handler.js';
import { callerHeadersFor, dispatchToDestination } from './core-dispatcher.js';
import { dispatchArgs } from './dispatch-options.js';
import type { CallOptions } from './outbound-call.js';
import { invalidRequestArgument, isUpgrade } from './request-validation.js';
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

  /** The last origin string seen and its shape: fetch() makes a new string per request, and a
   * compare with the last one is cheaper than hashing it for the Map. */
  #lastOrigin = '';
  #lastShape: OriginShape | null = null;

  /** The parsed shape of an origin (null: not a URL), cached per origin string. */
  #shape(origin: string | URL): OriginShape | null {
    if (typeof origin !== 'string') return originShape(origin);
    if (origin === this.#lastOrigin) return this.#lastShape;
    let shape = this.#shapes.get(origin);
    if (shape === undefined) {
      shape = originShape(origin);
      if (this.#shapes.size >= 1024) this.#shapes.clear();
      this.#shapes.set(origin, shape);
    }
    this.#lastOrigin = origin;
    this.#lastShape = shape;
    return shape;
  }

  // Made once: the decision runs on every request.
  readonly #isService = (name: string): boolean => this.#destinations.get(name) !== undefined;
  readonly #serviceNames = (): string[] => this.#destinations.names();

  override dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const origin = opts.origin;
    if (origin === undefined || origin === null) return this.#fallback.dispatch(opts, handler);
    const shape = this.#shape(origin);
    if (shape === null) return this.#fallback.dispatch(opts, handler);
    // `http://<service>`: one lookup against the configuration in force now, then the hot path.
    const dest = this.#destinations.get(shape.host);
    if (dest === undefined || shape.protocol !== 'http:' || shape.port !== '') {
      const decision: OriginDecision = decideOrigin(shape, this.#isService, this.#serviceNames, this.#unknownHosts);
      if (decision.kind === 'refuse') {
        // Refused before anything left the process: reported as the request's error (fetch wraps
        // it in `TypeError: fetch failed`; isTrellisError and trellisErrorOf look through that).
        failHandler(handler, decision.error);
        return true;
      }
      return this.#fallback.dispatch(opts, handler);
    }
    const service = shape.host;
    // Every option read from here on is a field of one shape (dispatch-options.ts).
    const args = dispatchArgs(opts);
    // Refused before the stack, through the handler's error path (as undici's own dispatchers do).
    // The headers are read once, as they are checked (an upgrade reads them at its own edge).
    const upgrade = isUpgrade(args);
    const headers = upgrade ? undefined : callerHeadersFor(dest, args.headers);
    const invalid = invalidRequestArgument(args, service, headers, dest.protocol === 'http2');
    if (invalid !== undefined) {
      this.#destinations.invalidArgument(service, args.method);
      failHandler(handler, invalid);
      return true;
    }
    // The caller's handler goes straight down the hot path; an upgrade, with every option the
    // caller gave (the copy keeps only what the hot path reads), to the upgrade edge.
    return dispatchToDestination(this.#destinations, dest, service, (upgrade ? opts : args) as CallOptions, handler, undefined, this.#upgrades, headers);
  }

  override async close(): Promise<void> {
    if (this.#ownsFallback) await this.#fallback.close();
  }

  override async destroy(): Promise<void> {
    if (this.#ownsFallback) await this.#fallback.destroy();
  }
}
