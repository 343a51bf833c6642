import type { ConfigProblem } from './problems.js';
import type { TracingConfig } from './types.js';
import { isUrl } from './urls.js';
import type { YamlSource } from './yaml-source.js';

/** The `tracing:` section as written. */
export interface TracingDocument {
  endpoint: string;
  serviceName?: string;
  sampleRatio?: number;
  headers?: Record<string, string>;
}

const DEFAULT_SERVICE_NAME = 'mcp-auth-gateway';

/**
 * Tracing is off unless configured: by `tracing:` in the file, or else by the standard
 * OpenTelemetry variables (OpenTelemetry specification, "Environment Variable Specification"
 * and the OTLP exporter's): OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (used as is) or
 * OTEL_EXPORTER_OTLP_ENDPOINT (+ `/v1/traces`), OTEL_SERVICE_NAME, OTEL_TRACES_SAMPLER and
 * OTEL_TRACES_SAMPLER_ARG, OTEL_EXPORTER_OTLP_(TRACES_)HEADERS. OTEL_SDK_DISABLED=true or
 * OTEL_TRACES_EXPORTER=none turn it off whatever the file says.
 */
export function tracingFrom(doc: TracingDocument | undefined, env: NodeJS.ProcessEnv, source: YamlSource, problems: ConfigProblem[]): { tracing?: TracingConfig } {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return {};
  if (env.OTEL_TRACES_EXPORTER !== undefined && env.OTEL_TRACES_EXPORTER.split(',').map((e) => e.trim()).includes('none')) return {};
  if (doc) {
    if (!isHttpUrl(doc.endpoint)) problems.push(source.problemAt(['tracing', 'endpoint'], `tracing.endpoint '${doc.endpoint}' is not an http(s) URL`));
    return { tracing: { endpoint: doc.endpoint, serviceName: doc.serviceName ?? DEFAULT_SERVICE_NAME, sampleRatio: doc.sampleRatio ?? 1, headers: doc.headers ?? {} } };
  }
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? (env.OTEL_EXPORTER_OTLP_ENDPOINT ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces` : undefined);
  if (endpoint === undefined) return {};
  const environment = (message: string): ConfigProblem => ({ file: 'environment', line: 1, col: 1, message });
  if (!isHttpUrl(endpoint)) problems.push(environment(`the OTLP traces endpoint '${endpoint}' is not an http(s) URL`));
  const ratio = samplerRatio(env.OTEL_TRACES_SAMPLER, env.OTEL_TRACES_SAMPLER_ARG);
  if (ratio === undefined) problems.push(environment(`OTEL_TRACES_SAMPLER '${env.OTEL_TRACES_SAMPLER}' with OTEL_TRACES_SAMPLER_ARG '${env.OTEL_TRACES_SAMPLER_ARG}' is not a sampler this gateway offers`));
  return {
    tracing: {
      endpoint,
      serviceName: env.OTEL_SERVICE_NAME?.trim() || DEFAULT_SERVICE_NAME,
      sampleRatio: ratio ?? 1,
      headers: { ...headerList(env.OTEL_EXPORTER_OTLP_HEADERS), ...headerList(env.OTEL_EXPORTER_OTLP_TRACES_HEADERS) },
    },
  };
}

function isHttpUrl(text: string): boolean {
  return isUrl(text) && /^https?:$/.test(new URL(text).protocol);
}

/** The share of new traces a standard sampler name records (all of them parent-based here). */
function samplerRatio(sampler: string | undefined, arg: string | undefined): number | undefined {
  switch ((sampler ?? 'parentbased_always_on').trim().toLowerCase()) {
    case 'always_on':
    case 'parentbased_always_on':
      return 1;
    case 'always_off':
    case 'parentbased_always_off':
      return 0;
    case 'traceidratio':
    case 'parentbased_traceidratio': {
      const ratio = arg === undefined ? 1 : Number(arg);
      return Number.isFinite(ratio) && ratio >= 0 && ratio <= 1 ? ratio : undefined;
    }
    default:
      return undefined;
  }
}

/** `key1=value1,key2=value2`, values percent-encoded (W3C Baggage format, as the OTLP exporter spec says). */
function headerList(text: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    const equals = pair.indexOf('=');
    if (equals <= 0) continue;
    try {
      headers[pair.slice(0, equals).trim().toLowerCase()] = decodeURIComponent(pair.slice(equals + 1).trim());
    } catch {
      // A value that is not percent-encoded is taken as written.
      headers[pair.slice(0, equals).trim().toLowerCase()] = pair.slice(equals + 1).trim();
    }
  }
  return headers;
}
