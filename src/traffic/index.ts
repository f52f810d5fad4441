/**
 * Traffic management (issue "Traffic management"): per-destination routes with Istio
 * VirtualService semantics — match and path normalization, rewrite, weighted and sticky backend
 * splits, fault injection and mirroring. Each piece is a pure function or a Filter; the order
 * they take in the outbound stack is written in `src/client/outbound-stack.ts`.
 */
export { normalizePath, normalizePathOnly } from './normalize-path.js';
export { compileRoutes, type CompiledRoute, type RouteMatch, type RouteRequest, type RouteTable } from './route-table.js';
export { rewriteRequest } from './rewrite.js';
export { backendPicker, type BackendPicker } from './weighted-split.js';
export { splitFilter, subsetSelector, routeKeyOf } from './split-filter.js';
export { faultFilter, type FaultDeps, type FaultKind } from './fault-filter.js';
export { syntheticHttpResponse, SyntheticBody } from './synthetic-response.js';
export { mirrorFilter, mirrorHeaders, MIRROR_HEADER, type MirrorDeps, type MirrorParams, type MirrorDropReason } from './mirror-filter.js';
