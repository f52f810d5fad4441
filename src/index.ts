/**
 * The public entry of the `trellis` package. Everything a user imports comes from here.
 */
export { meshClient } from './mesh-client.js';
export type { MeshClientOptions, Logger } from './mesh-client.js';
export { Mesh } from './mesh.js';
export type { MeshCloseOptions, MeshEvents } from './mesh.js';
export type { ControlPlaneStateEvent, ControlPlaneState } from './controlplane-client/control-plane-stream.js';
export type { AdvertiseTarget, AdvertiseOptions } from './controlplane-client/advertise.js';
export type { EndpointProtocol } from './controlplane/sync/protocol.js';
export type { MeshHttpClient, HttpClientOptions, MeshUpgradeOptions } from './client/http-client.js';
export type { MeshRequestOptions } from './client/http-request.js';
export type { HttpResponseClassifier, ResponseClass } from './client/http-classify.js';
export { MeshDispatcher } from './client/mesh-dispatcher.js';
export type { MeshDispatcherOptions, UnknownHostPolicy } from './client/dispatch-origin.js';
export type { MeshServer, ServeOptions, RequestHandler } from './server/serve.js';
export type { PeerInfo } from './server/peer.js';
export type { TrellisRequestInfo } from './server/inbound-security.js';
export { trellisInfo } from './server/inbound-security.js';
export { IDENTITY_HEADERS } from './server/identity-headers.js';
export type { ExpressMiddleware } from './server/express.js';
export type { TrellisFastifyPlugin } from './server/fastify.js';
export type { ListenerTimeouts } from './server/tls-listener.js';
export type { GrpcListener, GrpcListenOptions } from './grpc/listen.js';
export { fileIdentity, issuedIdentity, localAuthoritySigner } from './tls/identity.js';
export type { IdentityProvider, TlsMaterial, SignFunction } from './tls/identity.js';
export { createAuthority, issueLeaf } from './tls/authority.js';
export type { Authority } from './tls/authority.js';
export { generateP256KeyPair, privateKeyPem } from './tls/keys.js';
export { saveAuthority, loadAuthority } from './tls/authority-files.js';
export { createToken, verifyToken, generateTokenKey } from './tls/tokens.js';
export { signCsr } from './tls/signer.js';
export { spiffeIdFor, parseSpiffeId, verifySvid, checkServerIdentityFor } from './tls/spiffe.js';
export type { MeshInspection, ServiceInspection, EndpointInspection, OverloadInspection } from './inspect.js';
export type { BreakerState } from './client/service-state.js';
export { loadConfig } from './config/load.js';
export type { ConfigSource, LoadConfigOptions } from './config/load.js';
export type { ConfigLimits } from './config/config-limits.js';
export type * from './config/types.js';
export type { Endpoint, EndpointSource } from './discovery/endpoint.js';
export {
  TrellisError,
  ERROR_CODES,
  NoEndpointsError,
  UnknownServiceError,
  NoRouteError,
  CircuitOpenError,
  RateLimitedError,
  TimeoutError,
  RetriesExhaustedError,
  ConnectFailedError,
  ResetError,
  UpstreamError,
  AbortedError,
  ClosedError,
  ForbiddenError,
  PeerIdentityError,
  NoIdentityError,
  TokenInvalidError,
  CsrInvalidError,
  InvalidArgumentError,
  OverloadedError,
  ConflictError,
  NotFoundError,
  ControlPlaneStoreError,
  ConfigInvalidError,
} from './core/errors.js';
export { startControlPlane } from './controlplane/control-plane.js';
export type { ControlPlane, ControlPlaneOptions } from './controlplane/control-plane.js';
export type { Store, StoreEntry, StoreOp, StoreEvent, StoreWatch, StoreWatchHandlers, StoredResource, InstanceRecord, InstanceStatus, RegisteredEndpoint } from './controlplane/store/store.js';
export type { ApiHandler, ApiRequest, ApiResponse, RouteOptions, AuthRule, HttpMethod } from './controlplane/router.js';
export type { Caller } from './controlplane/caller.js';
export type { ErrorCode, ErrorCodeInfo, ConfigIssue } from './core/errors.js';
// Public isTrellisError looks through `cause` (fetch wraps mesh errors in `TypeError: fetch failed`).
export { isOrWrapsTrellisError as isTrellisError, trellisErrorOf } from './core/error-chain.js';
export { parseDuration, formatDuration } from './core/duration.js';
export { retryAfterMsOf } from './resilience/rate-limit-filter.js';
export type { RateLimiter } from './resilience/rate-limiter.js';
export { DEADLINE_HEADER } from './core/ambient.js';
export { systemClock } from './core/clock.js';
export type { Clock, Random } from './core/clock.js';
export type { TraceContext } from './core/ambient.js';
export { currentTraceContext } from './observability/tracer.js';
export { accessLogger } from './observability/access-log.js';
export type { AccessLog, AccessLogEntry } from './observability/access-log.js';
export { METRIC_NAMES } from './observability/metrics.js';
export type { MeshMetrics } from './observability/metrics.js';
export { metricsHandler } from './observability/metrics-handler.js';
export type { ConnectOptions, MeshSocket, OutboundConnectionInfo } from './client/tcp-connect.js';
export type { ListenOptions, MeshTcpServer, MeshInboundSocket, ConnectionHandler, InboundConnectionInfo } from './server/tcp-listen.js';
export type { MeshAgent, MeshHttpsAgent } from './client/mesh-agent.js';
export type { WebSocketOptions, MeshWebSocketClientOptions } from './client/websocket.js';
