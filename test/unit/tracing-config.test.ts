import { describe, expect, it } from 'vitest';
import type { ConfigProblem } from '../../src/config/problems.js';
import { tracingFrom } from '../../src/config/tracing-section.js';
import { YamlSource } from '../../src/config/yaml-source.js';

/**
 * Tracing is off unless configured, by `tracing:` or by the standard OpenTelemetry variables;
 * the standard switches turn it off whatever the file says.
 */
const source = new YamlSource('gateway.yaml', 'tracing: { endpoint: "not a url" }\n');
const run = (doc: Parameters<typeof tracingFrom>[0], env: NodeJS.ProcessEnv) => {
  const problems: ConfigProblem[] = [];
  return { ...tracingFrom(doc, env, source, problems), problems };
};

describe('tracing configuration', () => {
  it('is off with neither a tracing section nor an endpoint variable', () => {
    expect(run(undefined, { OTEL_SERVICE_NAME: 'x' })).toEqual({ problems: [] });
  });

  it('takes the section, with its defaults', () => {
    expect(run({ endpoint: 'http://collector:4318/v1/traces' }, {}).tracing).toEqual({ endpoint: 'http://collector:4318/v1/traces', serviceName: 'mcp-auth-gateway', sampleRatio: 1, headers: {} });
  });

  it('takes the standard variables: the traces endpoint as is, or the base endpoint plus /v1/traces, name, sampler and headers', () => {
    expect(run(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.test/' }).tracing?.endpoint).toBe('https://otel.example.test/v1/traces');
    const traces = run(undefined, {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://ignored.example.test',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://otel.example.test/custom',
      OTEL_SERVICE_NAME: 'gw-eu',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=a%20b,x-team=mcp',
    });
    expect(traces).toEqual({ tracing: { endpoint: 'https://otel.example.test/custom', serviceName: 'gw-eu', sampleRatio: 0.25, headers: { 'x-api-key': 'a b', 'x-team': 'mcp' } }, problems: [] });
  });

  it('is turned off by OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none, even with a section', () => {
    expect(run({ endpoint: 'http://collector:4318/v1/traces' }, { OTEL_SDK_DISABLED: 'true' }).tracing).toBeUndefined();
    expect(run(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }).tracing).toBeUndefined();
  });

  it('refuses an endpoint that is not an http(s) URL and a sampler it does not offer, naming where they came from', () => {
    expect(run({ endpoint: 'not a url' }, {}).problems.map((p) => [p.file, p.line, p.message])).toEqual([['gateway.yaml', 1, "tracing.endpoint 'not a url' is not an http(s) URL"]]);
    const env = run(undefined, { OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://c', OTEL_TRACES_SAMPLER: 'jaeger_remote' });
    expect(env.problems.map((p) => [p.file, p.message])).toEqual([
      ['environment', "the OTLP traces endpoint 'ftp://c/v1/traces' is not an http(s) URL"],
      ['environment', "OTEL_TRACES_SAMPLER 'jaeger_remote' with OTEL_TRACES_SAMPLER_ARG 'undefined' is not a sampler this gateway offers"],
    ]);
  });
});
