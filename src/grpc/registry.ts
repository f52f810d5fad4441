/**
 * The process-wide map from a `trellis:` target's mesh id to the mesh that serves it. grpc-js's
 * resolver and LB-policy registries are process-wide (one `trellis` scheme, one `trellis`
 * policy), so the resolver grpc-js instantiates finds its mesh here, by the id in the target's
 * authority: `trellis://<mesh-id>/<service>`. Several meshes in one process (tests, a gateway)
 * each register under their own id.
 *
 * Entries are removed by `unregister` when a mesh closes, and held through a WeakRef so a mesh
 * dropped without `close()` is not kept alive by a channel that outlived it.
 *
 * This is the one piece of module-level state in src/grpc, and it is so by nature: it mirrors
 * the registries of grpc-js it serves.
 */
import type { Clock } from '../core/clock.js';
import type { EndpointSet } from '../client/endpoint-set.js';
import type { GrpcClientSide } from './client-interceptors.js';

/** What the resolver and the LB policy need of a mesh. */
export interface GrpcMeshSource {
  readonly clock: Clock;
  /** The live endpoint set of a destination, or undefined when the service is not configured. */
  endpointSet(service: string): EndpointSet | undefined;
  /** Calls `listener` when a destination's endpoints (service named) or the config (undefined) changed. */
  watch(listener: (service: string | undefined) => void): () => void;
  /** The mesh's outbound gRPC side (for an interceptor used on this mesh's channels by another mesh). */
  readonly client: GrpcClientSide;
}

export class MeshRegistry {
  readonly #meshes = new Map<string, WeakRef<GrpcMeshSource>>();
  #next = 1;

  /** Registers a mesh; returns its id for targets (`m1`, `m2`, ...). */
  register(source: GrpcMeshSource): string {
    const id = `m${this.#next++}`;
    this.#meshes.set(id, new WeakRef(source));
    return id;
  }

  unregister(id: string): void {
    this.#meshes.delete(id);
  }

  /** The mesh registered under `id`; with `''`, the only registered mesh (none when several). */
  get(id: string): GrpcMeshSource | undefined {
    if (id === '') {
      let only: GrpcMeshSource | undefined;
      for (const [key, ref] of this.#meshes) {
        const m = ref.deref();
        if (m === undefined) {
          this.#meshes.delete(key);
          continue;
        }
        if (only !== undefined) return undefined;
        only = m;
      }
      return only;
    }
    const m = this.#meshes.get(id)?.deref();
    if (m === undefined) this.#meshes.delete(id);
    return m;
  }
}

/**
 * The registry of this process, shared through a `Symbol.for` key by every copy of Trellis loaded
 * in it — the ESM build and the CommonJS build (dist/cjs) when an application imports one and a
 * dependency requires the other. grpc-js keeps one `trellis` resolver (the last registered), so
 * that resolver must find the meshes of both copies, and mesh ids must not collide.
 */
const kRegistry = Symbol.for('trellis.grpc.meshRegistry');
const shared = globalThis as { [kRegistry]?: MeshRegistry };
export const meshRegistry: MeshRegistry = (shared[kRegistry] ??= new MeshRegistry());
