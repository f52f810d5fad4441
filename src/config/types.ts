/**
 * The validated, normalized configuration that the rest of Trellis consumes. The YAML (or
 * object) documents of the public contract (docs/) are parsed and checked by `schema.ts` and turned into these
 * shapes by `normalize.ts`: durations in milliseconds, defaults filled in, names resolved.
 * Modules never see raw config; `outbound-stack.ts` maps these to each module's own params.
 */

export type Protocol = 'http' | 'http2' | 'grpc' | 'tcp';
export type MtlsMode = 'strict' | 'permissive' | 'off';
export type LoadBalancerKind = 'round-robin' | 'random' | 'least-request' | 'ewma' | 'ring-hash';

export interface MeshSpec {
  name: string;
  trustDomain: string;
  /** Undefined when the document did not say (the default then depends on identity). */
  mtls: MtlsMode | undefined;
  certificateTTLMs: number;
  tracing: { sampling: number; propagation: ('tracecontext' | 'b3')[]; otlp: { endpoint: string; headers: Record<string, string> | undefined } | undefined } | undefined;
  /** DNS resolution settings for `dns:` endpoints (servers for tests or split-horizon setups). */
  dns: { servers: string[] | undefined; refreshIntervalMs: number; minTtlMs: number } ;
  /** Redis for global rate limits: `redis://host:port`. */
  redis: { url: string } | undefined;
}

export interface StaticEndpointSpec {
  host: string;
  port: number;
  labels: Record<string, string>;
}

export interface DnsSpec {
  /** Name to resolve: `products.shop.svc` (A/AAAA) or `_http._tcp.products.shop.svc` (SRV). */
  name: string;
  /** Port for A/AAAA answers; undefined for SRV (the port comes from the records). */
  port: number | undefined;
  type: 'a' | 'srv';
  /** Labels given to every discovered endpoint. */
  labels: Record<string, string>;
}

export interface BackoffSpec {
  baseMs: number;
  maxMs: number;
}

export interface RetryBudgetSpec {
  /** Retries allowed as a fraction of requests (0.2 = 20%). */
  ratio: number;
  /** Retries always allowed per second, whatever the ratio. */
  minPerSecond: number;
  /** Window over which requests and retries are counted. */
  ttlMs: number;
}

export interface RetrySpec {
  /** Total attempts, the first included (so 3 = up to 2 retries). */
  attempts: number;
  perTryTimeoutMs: number | undefined;
  /** Conditions: connect-failure, reset, timeout, gateway-error, 5xx, retriable-4xx, numeric codes as strings ("409"), gRPC status names in kebab case. */
  on: string[];
  backoff: BackoffSpec;
  budget: RetryBudgetSpec;
  /** Largest request body (bytes) kept for replay; larger or streamed bodies are not retried. */
  maxReplayBytes: number;
  /** Whether the `retries` block was written (false = the built-in connect-failure-once default). */
  explicit: boolean;
}

export interface CircuitBreakerSpec {
  errorThresholdPercent: number;
  volumeThreshold: number;
  resetTimeoutMs: number;
  /** Rolling window over which errors are counted. */
  windowMs: number;
}

export interface OutlierDetectionSpec {
  consecutiveFailures: number;
  ejectionTimeMs: number;
  /** Cap on the ejection time as it grows on repeat ejections. */
  maxEjectionTimeMs: number;
  maxEjectedPercent: number;
}

export interface RateLimitSpec {
  requestsPerSecond: number;
  burst: number;
  scope: 'instance' | 'global';
}

export interface HeaderMatchSpec {
  name: string;
  exact?: string | undefined;
  regex?: string | undefined;
  present?: boolean | undefined;
}

export interface QueryMatchSpec {
  name: string;
  exact?: string | undefined;
  regex?: string | undefined;
  present?: boolean | undefined;
}

export interface RouteMatchSpec {
  pathExact: string[];
  pathPrefix: string[];
  pathRegex: string[];
  methods: string[];
  headers: HeaderMatchSpec[];
  query: QueryMatchSpec[];
}

export interface BackendSpec {
  subset: Record<string, string>;
  weight: number;
}

export interface FaultSpec {
  delay: { durationMs: number; percent: number } | undefined;
  abort: { status: number; percent: number; grpcStatus?: string | undefined } | undefined;
}

export interface RouteSpec {
  name: string;
  /** Undefined: matches everything. */
  match: RouteMatchSpec | undefined;
  rewrite: { path: string | undefined; authority: string | undefined } | undefined;
  backends: BackendSpec[];
  mirror: { subset: Record<string, string>; percent: number; maxBodyBytes: number } | undefined;
  fault: FaultSpec | undefined;
  timeoutMs: number | undefined;
  retries: RetrySpec | undefined;
  rateLimit: RateLimitSpec | undefined;
  /** Ring-hash stickiness key for this route: a header name to read the key from. */
  hashOn: { header: string } | undefined;
}

export interface AuthorizationRuleSpec {
  from: string[];
  methods: string[];
  paths: string[];
}

export interface InboundSpec {
  authorization: { allow: AuthorizationRuleSpec[]; deny: AuthorizationRuleSpec[] } | undefined;
  rateLimit: RateLimitSpec | undefined;
  fault: FaultSpec | undefined;
  overload?: OverloadSpec | undefined;
}

/** Bounds of an adaptive concurrency limit (requests in flight). */
export interface ConcurrencyLimitSpec {
  initial: number;
  min: number;
  max: number;
}

/** `inbound.overload`: what sheds new requests before the handler runs (docs/overload.md). */
export interface OverloadSpec {
  /** Shed when the event loop is saturated; undefined = off. */
  eventLoop: { maxUtilization: number; maxDelayMs: number } | undefined;
  /** The adaptive in-flight limit; undefined = off. */
  concurrency: ConcurrencyLimitSpec | undefined;
  /** Refuse requests whose propagated deadline passed or cannot be met. */
  deadline: boolean;
  /** Paths (exact, `prefix*`, `*`) shed last. */
  critical: string[];
}

/** `adaptiveConcurrency`: the outbound limit per destination. */
export interface AdaptiveConcurrencySpec extends ConcurrencyLimitSpec {
  /** How long an excess call may wait for a slot; 0 = fail fast with TRELLIS_OVERLOADED. */
  maxWaitMs: number;
}

export interface ServiceSpec {
  name: string;
  protocol: Protocol;
  /** Exactly one of endpoints / dns, or neither (endpoints then come from the registry). */
  endpoints: StaticEndpointSpec[] | undefined;
  dns: DnsSpec | undefined;
  mtls: MtlsMode | undefined;
  loadBalancer: LoadBalancerKind;
  /** Overall timeout of a logical request (all attempts, until the response completes). 0 = none. */
  timeoutMs: number;
  retries: RetrySpec;
  circuitBreaker: CircuitBreakerSpec | undefined;
  outlierDetection: OutlierDetectionSpec | undefined;
  rateLimit: RateLimitSpec | undefined;
  routes: RouteSpec[];
  inbound: InboundSpec | undefined;
  /** The outbound adaptive concurrency limit; undefined = off. */
  adaptiveConcurrency?: AdaptiveConcurrencySpec | undefined;
  /** Connection pool settings per endpoint. */
  connection: { maxConnections: number; connectTimeoutMs: number; keepAliveTimeoutMs: number };
}

/** One validated configuration: the Mesh document (defaults when absent) and every Service. */
export interface MeshConfig {
  mesh: MeshSpec;
  services: ReadonlyMap<string, ServiceSpec>;
  /** Where it came from (file paths or `<inline>`), for messages. */
  sources: string[];
}
