import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context, type Span } from '@opentelemetry/api';
import type { Tracing } from './tracing.js';

/** A step of the request, timed as it runs; its span is made once the trace has a parent. */
interface Step {
  readonly name: string;
  readonly start: number;
  end: number | undefined;
  error: string | undefined;
  span: Span | undefined;
}

const now = () => performance.timeOrigin + performance.now();

/**
 * One request's trace. Its steps are timed as they run, but their spans are made only when the
 * trace is opened: when the request is about to leave for the upstream (whose request must name
 * the gateway's span), or when it ends. By then the body has been read, so a 2026-07-28 request
 * that carries its trace context in `_meta` (SEP-414) rather than in headers is parented right.
 * Before that, a step costs a small record and no span.
 */
export class RequestTrace {
  private readonly steps: Step[] = [];
  private current: Step | undefined;
  private request: Span | undefined;
  private requestContext: Context | undefined;
  private metaParent: Context | undefined;
  private readonly attributes: Attributes = {};

  constructor(
    private readonly tracing: Tracing,
    private readonly name: string,
    private readonly startedAt: number,
    /** The caller's context from traceparent/tracestate headers, if valid. */
    private readonly headerParent: Context | undefined,
  ) {}

  beginStep(name: string): void {
    const step: Step = { name, start: now(), end: undefined, error: undefined, span: undefined };
    if (this.requestContext) step.span = this.tracing.tracer.startSpan(name, { startTime: step.start }, this.requestContext);
    this.steps.push(step);
    this.current = step;
  }

  endStep(error?: string): void {
    const step = this.current;
    if (!step) return;
    this.current = undefined;
    step.end = now();
    step.error = error;
    if (step.span) endSpan(step.span, step.end, error);
  }

  /** Trace context from a 2026-07-28 body's `_meta`, used when the request carried none in headers. */
  honourMeta(traceparent: string | undefined, tracestate: string | undefined): void {
    if (this.headerParent || this.request || traceparent === undefined) return;
    this.metaParent = this.tracing.extract({ traceparent, ...(tracestate !== undefined ? { tracestate } : {}) });
  }

  /** What the spans say about the request: never a token, an argument or a secret. */
  setAttributes(attributes: Attributes): void {
    Object.assign(this.attributes, attributes);
    this.request?.setAttributes(attributes);
  }

  /** The context of the step now running (the upstream call), to name in the request sent upstream. */
  currentContext(): Context {
    this.open();
    const span = this.current?.span ?? this.request!;
    return trace.setSpan(this.requestContext!, span);
  }

  /** Ends the request's span (at the response's close): an error status for 5xx answers and cut responses. */
  finish(status: number, aborted: boolean): void {
    this.open();
    const request = this.request!;
    request.setAttribute('http.response.status_code', status);
    if (status >= 500 || aborted) request.setStatus({ code: SpanStatusCode.ERROR, message: aborted ? 'response not completed' : `HTTP ${status}` });
    request.end(now());
  }

  private open(): void {
    if (this.request) return;
    const parent = this.headerParent ?? this.metaParent ?? ROOT_CONTEXT;
    this.request = this.tracing.tracer.startSpan(this.name, { kind: SpanKind.SERVER, startTime: this.startedAt, attributes: this.attributes }, parent);
    this.requestContext = trace.setSpan(parent, this.request);
    for (const step of this.steps) {
      step.span = this.tracing.tracer.startSpan(step.name, { startTime: step.start }, this.requestContext);
      if (step.end !== undefined) endSpan(step.span, step.end, step.error);
    }
  }
}

function endSpan(span: Span, end: number, error: string | undefined): void {
  if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
  span.end(end);
}
