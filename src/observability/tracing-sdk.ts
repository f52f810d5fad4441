/**
 * The OpenTelemetry SDK the mesh builds for itself when the Mesh document sets `tracing.otlp`
 * and the application registered none: a NodeTracerProvider (SDK 2.x: span processors are
 * given to the constructor) with a BatchSpanProcessor feeding an OTLP/HTTP exporter, and a
 * parent-based sampler whose root is a trace-id ratio (so a caller's decision is honoured and
 * new traces are sampled at `sampling`; the ratio can change on a config reload).
 *
 * The provider is owned by the mesh and never registered globally: the application's own
 * `trace.getTracer()` keeps its no-op behaviour, and several meshes in one process export
 * under their own `service.name`. `tracer.ts` loads this file with a dynamic import, only when
 * it is needed, so the SDK stays off the startup path otherwise.
 */
import type { Attributes, Context, Link, SpanKind } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import type { Sampler, SamplingResult } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { OtlpOptions, OwnedProvider } from './tracer.js';

/** A trace-id ratio sampler whose ratio can be replaced (config reloads). */
class AdjustableRatioSampler implements Sampler {
  #inner: TraceIdRatioBasedSampler;
  constructor(ratio: number) {
    this.#inner = new TraceIdRatioBasedSampler(ratio);
  }
  set ratio(ratio: number) {
    this.#inner = new TraceIdRatioBasedSampler(ratio);
  }
  shouldSample(ctx: Context, traceId: string, spanName: string, kind: SpanKind, attributes: Attributes, links: Link[]): SamplingResult {
    return this.#inner.shouldSample(ctx, traceId);
  }
  toString(): string {
    return `Trellis{${this.#inner.toString()}}`;
  }
}

export interface OwnedOtlpParams {
  service: string | undefined;
  sampling: number;
  otlp: OtlpOptions;
}

/** Builds the mesh-owned provider exporting to `otlp.endpoint`. */
export function ownedOtlpProvider(params: OwnedOtlpParams): OwnedProvider {
  const root = new AdjustableRatioSampler(params.sampling);
  const exporter = new OTLPTraceExporter({ url: params.otlp.endpoint, ...(params.otlp.headers !== undefined ? { headers: { ...params.otlp.headers } } : {}) });
  const provider = new NodeTracerProvider({
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': params.service ?? 'unknown_service:node' })),
    sampler: new ParentBasedSampler({ root }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  return {
    provider,
    setSampling: (ratio) => {
      root.ratio = ratio;
    },
    forceFlush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
