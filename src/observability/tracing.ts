import { ROOT_CONTEXT, trace, type Context, type TextMapGetter, type TextMapSetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider } from '@opentelemetry/sdk-trace';
import type { TracingConfig } from '../config/types.js';

/** Reads W3C trace context from request headers (Node lower-cases their names). */
/** Writes traceparent and tracestate into the upstream request's headers. */
const SET_HEADER: TextMapSetter<Record<string, string>> = { set: (carrier, key, value) => void (carrier[key] = value) };
const HEADERS: TextMapGetter<Readonly<Record<string, string | string[] | undefined>>> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

/**
 * The gateway's tracer: spans go to an OTLP/HTTP collector in batches. Nothing is registered
 * globally (as with the metrics registry, one gateway's tracer is its own), contexts are passed
 * explicitly rather than through async hooks, and W3C trace context (traceparent, tracestate)
 * is what is read from clients and written upstream.
 */
export class Tracing {
  readonly tracer: Tracer;
  private readonly provider: TracerProvider;
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(config: TracingConfig, version: string) {
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': config.serviceName, 'service.version': version }),
      // A caller's sampled flag is followed; new traces are recorded at the configured ratio.
      sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(config.sampleRatio) }),
      spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: config.endpoint, headers: { ...config.headers } }), scheduledDelayMillis: 1_000 })],
    });
    this.tracer = this.provider.getTracer('mcp-auth-gateway', version);
  }

  /** The caller's trace context from W3C headers (or the equivalent `_meta` fields), if any is valid. */
  extract(carrier: Readonly<Record<string, string | string[] | undefined>>): Context | undefined {
    const extracted = this.propagator.extract(ROOT_CONTEXT, carrier, HEADERS);
    return trace.getSpanContext(extracted) === undefined ? undefined : extracted;
  }

  /** traceparent (and tracestate) naming the span in `context`, for the request sent upstream. */
  inject(context: Context, headers: Record<string, string>): void {
    this.propagator.inject(context, headers, SET_HEADER);
  }

  /** Sends what is still batched: at shutdown, so no span is lost. */
  async shutdown(): Promise<void> {
    await this.provider.shutdown();
  }
}
