/**
 * MeshTracer: one per mesh client. It holds the propagation formats and sampling ratio of the
 * Mesh document's `tracing` block and decides, per span, which of three modes applies:
 *
 * - **provided**: the mesh was given a TracerProvider (`tracerProvider` option), or built and
 *   owns one because `tracing.otlp` is set and the application registered no SDK. Spans go to
 *   that provider; nothing global is registered, so two meshes in one process (tests, a
 *   gateway) each export under their own `service.name`.
 * - **global**: the application registered an OpenTelemetry SDK (`trace.getTracerProvider()`
 *   delegates to something other than the API's no-op). Spans go to it and its sampler decides.
 *   Checked per span (about 20 ns), so an SDK registered after `meshClient()` is picked up.
 * - **propagate-only**: no SDK. No span is made; the inbound context is passed through
 *   unchanged (the OpenTelemetry API's own no-SDK behaviour), so the nearest recording hops
 *   upstream and downstream stay linked parent to child, and a request that starts here gets a
 *   new trace id whose sampled flag is drawn from `sampling`.
 *
 * Parent of an outbound attempt, first that exists: the application's active OpenTelemetry span
 * (it made its own span, or an instrumentation did), the ambient inbound span (set by
 * `startServerSpan` through AsyncLocalStorage, with the deadline), else none (a new trace).
 */
import { context, createTraceState, isSpanContextValid, ProxyTracerProvider, trace } from '@opentelemetry/api';
import type { Context, SpanContext, Tracer, TracerProvider } from '@opentelemetry/api';
import type { TraceContext } from '../core/ambient.js';
import { currentAmbient } from '../core/ambient.js';
import { systemRandom } from '../core/clock.js';
import type { Random } from '../core/clock.js';
import { DEFAULT_PROPAGATION, extract, formatTraceparent, inject } from './propagation.js';
import type { HeaderBag, PropagationFormat } from './propagation.js';
import { randomTraceIds } from './trace-ids.js';
import type { TraceIdSource } from './trace-ids.js';

/** Instrumentation scope of every span Trellis makes. */
export const TRACER_NAME = 'trellis';

/** The API's no-op provider: what a ProxyTracerProvider with no delegate answers. */
const NOOP_PROVIDER: TracerProvider = new ProxyTracerProvider().getDelegate();

/** Where `tracing.otlp` sends spans when the mesh owns the SDK. */
export interface OtlpOptions {
  /** OTLP/HTTP traces URL, e.g. `http://127.0.0.1:4318/v1/traces`. */
  endpoint: string;
  /** Extra request headers (an API key for a hosted collector). */
  headers?: Record<string, string>;
}

/** The Mesh document's `tracing` block, normalized. */
export interface TracingSettings {
  sampling: number;
  propagation: readonly PropagationFormat[];
}

export interface MeshTracerOptions {
  /** This workload's service name: server spans' `server.address`, the owned SDK's `service.name`. */
  service?: string | undefined;
  /** Formats injected on outbound attempts (every format is always extracted). Default: tracecontext and b3. */
  propagation?: readonly PropagationFormat[];
  /** Ratio of new traces sampled (0..1): the owned SDK's root sampler, and propagate-only roots. Default 1. */
  sampling?: number;
  /** Send spans here instead of the global provider; the mesh does not shut it down. */
  tracerProvider?: TracerProvider;
  /** Randomness for propagate-only sampling decisions (injected for tests). */
  random?: Random;
  /** Id source for propagate-only roots (injected for tests). */
  ids?: TraceIdSource;
}

/** A provider the mesh created and must flush and shut down (see `tracing-sdk.ts`). */
export interface OwnedProvider {
  readonly provider: TracerProvider;
  setSampling(ratio: number): void;
  forceFlush(): Promise<void>;
  shutdown(): Promise<void>;
}

export type TracingMode = 'provided' | 'global' | 'propagate-only';

/** The delegate behind the global provider, or undefined when it is the API's no-op. */
export function globalSdkProvider(): TracerProvider | undefined {
  const p = trace.getTracerProvider();
  const d = p instanceof ProxyTracerProvider ? p.getDelegate() : typeof (p as { getDelegate?: unknown }).getDelegate === 'function' ? (p as ProxyTracerProvider).getDelegate() : p;
  // Another copy of the API has its own no-op instance; its name gives it away.
  if (d === NOOP_PROVIDER || d.constructor?.name === 'NoopTracerProvider') return undefined;
  return d;
}

/** A TraceContext as an OpenTelemetry SpanContext. */
export function toSpanContext(tc: TraceContext, isRemote: boolean): SpanContext {
  const sc: SpanContext = { traceId: tc.traceId, spanId: tc.spanId, traceFlags: tc.sampled ? 1 : 0, isRemote };
  if (tc.traceState !== undefined) sc.traceState = createTraceState(tc.traceState);
  return sc;
}

/** An OpenTelemetry SpanContext as a TraceContext. */
export function fromSpanContext(sc: SpanContext): TraceContext {
  const ts = sc.traceState?.serialize();
  return ts !== undefined && ts !== '' ? { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & 1) === 1, traceState: ts } : { traceId: sc.traceId, spanId: sc.spanId, sampled: (sc.traceFlags & 1) === 1 };
}

/**
 * The trace context of the work in progress: the active OpenTelemetry span, else the inbound
 * request Trellis is serving (AsyncLocalStorage). For application logs: put its `traceId` on
 * every line to join them with access logs and traces.
 *
 * @example
 * logger.info({ trace_id: currentTraceContext()?.traceId }, 'cart loaded');
 */
export function currentTraceContext(): TraceContext | undefined {
  const span = trace.getSpan(context.active());
  if (span !== undefined) {
    const sc = span.spanContext();
    if (isSpanContextValid(sc)) return fromSpanContext(sc);
  }
  return currentAmbient()?.trace;
}

function isW3cOnly(formats: readonly PropagationFormat[]): boolean {
  return formats.length === 1 && formats[0] === 'tracecontext';
}

function checkSampling(ratio: number): number {
  if (!(ratio >= 0 && ratio <= 1)) throw new RangeError(`tracing sampling must be within 0..1, got ${ratio}`);
  return ratio;
}

export class MeshTracer {
  readonly service: string | undefined;
  #formats: readonly PropagationFormat[];
  /** The formats are W3C alone (the default): `headersFor` builds its object in one literal. */
  #w3cOnly: boolean;
  #sampling: number;
  readonly #random: Random;
  readonly #ids: TraceIdSource;
  readonly #provided: Tracer | undefined;
  readonly #owned: OwnedProvider | undefined;
  #globalDelegate: TracerProvider | undefined;
  #globalTracer: Tracer | undefined;
  #closed = false;

  /**
   * @param owned A provider built for this mesh (by `createMeshTracer`); flushed and shut down
   *   by `close()`. Takes precedence over `options.tracerProvider`.
   *
   * @example
   * const tracer = new MeshTracer({ service: 'checkout', propagation: ['tracecontext', 'b3'] });
   */
  constructor(options: MeshTracerOptions = {}, owned?: OwnedProvider) {
    this.service = options.service;
    this.#formats = Object.freeze([...new Set(options.propagation ?? DEFAULT_PROPAGATION)]);
    this.#w3cOnly = isW3cOnly(this.#formats);
    this.#sampling = checkSampling(options.sampling ?? 1);
    this.#random = options.random ?? systemRandom;
    this.#ids = options.ids ?? randomTraceIds();
    this.#owned = owned;
    const provider = owned?.provider ?? options.tracerProvider;
    this.#provided = provider?.getTracer(TRACER_NAME);
    owned?.setSampling(this.#sampling);
  }

  /** Formats injected on outbound attempts. */
  get formats(): readonly PropagationFormat[] {
    return this.#formats;
  }

  get sampling(): number {
    return this.#sampling;
  }

  /** Whether the mesh built (and will shut down) its own SDK for `tracing.otlp`. */
  get ownsProvider(): boolean {
    return this.#owned !== undefined;
  }

  /** Which mode a span started now would use. */
  get mode(): TracingMode {
    if (this.#provided !== undefined) return 'provided';
    return globalSdkProvider() !== undefined ? 'global' : 'propagate-only';
  }

  /** Applies a new `tracing` block (a config reload): formats and sampling change in place. */
  update(settings: TracingSettings | undefined): void {
    this.#formats = Object.freeze([...new Set(settings?.propagation ?? DEFAULT_PROPAGATION)]);
    this.#w3cOnly = isW3cOnly(this.#formats);
    this.#sampling = checkSampling(settings?.sampling ?? 1);
    this.#owned?.setSampling(this.#sampling);
  }

  /** The tracer spans go to now, or undefined in propagate-only mode. */
  spanTracer(): Tracer | undefined {
    if (this.#closed) return undefined;
    if (this.#provided !== undefined) return this.#provided;
    const d = globalSdkProvider();
    if (d === undefined) return undefined;
    if (d !== this.#globalDelegate) {
      this.#globalDelegate = d;
      this.#globalTracer = d.getTracer(TRACER_NAME);
    }
    return this.#globalTracer;
  }

  /** The trace context in `headers`, whatever the format. */
  extract(headers: HeaderBag): TraceContext | undefined {
    return extract(headers);
  }

  /** A new headers object carrying `ctx` in the configured formats. */
  headersFor(ctx: TraceContext): Record<string, string> {
    if (this.#w3cOnly && (ctx.traceState === undefined || ctx.traceState === '')) return { traceparent: formatTraceparent(ctx) };
    return inject(ctx, {}, this.#formats);
  }

  /** A new root context (propagate-only mode): new ids, sampled with probability `sampling`. */
  newRoot(): TraceContext {
    return { traceId: this.#ids.traceId(), spanId: this.#ids.spanId(), sampled: this.#sampling >= 1 || (this.#sampling > 0 && this.#random() < this.#sampling) };
  }

  /** A new root's W3C traceparent as one flat string (propagate-only mode, W3C alone): what `formatTraceparent(newRoot())` gives, without the context. */
  newRootTraceparent(): string {
    return this.#ids.traceparent(this.#sampling >= 1 || (this.#sampling > 0 && this.#random() < this.#sampling));
  }

  /** A new span id (propagate-only children that need their own id). */
  newSpanId(): string {
    return this.#ids.spanId();
  }

  /**
   * Parent of an outbound call in propagate-only mode: the application's active span context
   * (a propagator it runs without an SDK), else the ambient inbound context.
   */
  currentParent(): TraceContext | undefined {
    return currentTraceContext();
  }

  /**
   * Parent of an outbound span when spans are made: the active OpenTelemetry context when it
   * holds a valid span, else that context with the ambient inbound span set, else the active
   * context as it is (the span is then a root, and the SDK's sampler decides).
   */
  parentOtelContext(): Context {
    const active = context.active();
    const span = trace.getSpan(active);
    if (span !== undefined && isSpanContextValid(span.spanContext())) return active;
    const amb = currentAmbient()?.trace;
    return amb === undefined ? active : trace.setSpanContext(active, toSpanContext(amb, false));
  }

  /** Trace id of the work in progress (for access logs), if any. */
  currentTraceId(): string | undefined {
    return this.currentParent()?.traceId;
  }

  /** Exports spans still buffered by an owned SDK. */
  async forceFlush(): Promise<void> {
    await this.#owned?.forceFlush();
  }

  /** Stops making spans; flushes and shuts down an owned SDK (never the application's). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#owned?.shutdown();
  }
}

export interface CreateMeshTracerOptions extends MeshTracerOptions {
  /** Export spans over OTLP/HTTP with an SDK the mesh owns, unless the application has one. */
  otlp?: OtlpOptions | undefined;
  /** Told when `otlp` is ignored because the application registered its own SDK. */
  onWarn?: (message: string) => void;
}

/**
 * Builds the mesh's tracer. With `otlp` and no SDK of the application's (and no
 * `tracerProvider`), it loads the OpenTelemetry SDK (only then: it stays off the startup path
 * otherwise) and builds a provider the mesh owns; it never registers it globally.
 *
 * @example
 * const tracer = await createMeshTracer({ service: 'checkout', sampling: 0.1,
 *   otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces' } });
 * // ... later, in close():
 * await tracer.close();
 */
export async function createMeshTracer(options: CreateMeshTracerOptions): Promise<MeshTracer> {
  const { otlp, onWarn, ...rest } = options;
  if (otlp === undefined) return new MeshTracer(rest);
  if (rest.tracerProvider !== undefined) {
    onWarn?.('tracing.otlp is ignored: spans go to the tracerProvider given to meshClient()');
    return new MeshTracer(rest);
  }
  if (globalSdkProvider() !== undefined) {
    onWarn?.('tracing.otlp is ignored: the application registered an OpenTelemetry SDK, and its exporters receive the mesh\'s spans');
    return new MeshTracer(rest);
  }
  const { ownedOtlpProvider } = await import('./tracing-sdk.js');
  const owned = ownedOtlpProvider({ service: rest.service, sampling: rest.sampling ?? 1, otlp });
  return new MeshTracer(rest, owned);
}
