import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { IDP_SCOPES } from '../support/stack.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';
import { startRouteGateway, type RouteGateway } from '../support/route-gateway.js';
import { answerWith, startScriptedUpstream, type ScriptedUpstream } from '../support/scripted-upstream.js';

/**
 * OpenTelemetry traces (issue 27): the gateway sends one span per request, with a child span per
 * step, to a real OTLP/HTTP receiver on loopback that decodes what the exporter sends; it
 * continues the caller's W3C trace context (from headers, or from a 2026-07-28 body's `_meta`)
 * and hands its own to the upstream; no token, argument or secret is in any attribute. Off
 * unless configured, and then the client's traceparent passes upstream untouched.
 */
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';
const TRACEPARENT = `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`;
const SECRET_ARGUMENT = 'argument-value-that-must-not-be-traced';
const STEPS = ['check origin', 'verify token', 'check route scopes', 'check session', 'decide policy', 'spend budgets', 'call upstream', 'relay answer'];

const callBody = (id: number, name = 'list_todos', meta?: Record<string, unknown>) =>
  JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: { note: SECRET_ARGUMENT }, ...(meta ? { _meta: meta } : {}) } });
const answer = (id: number) => answerWith('application/json', JSON.stringify({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: 'ok' }] } }));

describe('OpenTelemetry traces', () => {
  let idp: DevIdp;
  let upstream: ScriptedUpstream;
  let receiver: OtlpReceiver;
  let traced: RouteGateway;
  let token: string;

  beforeAll(async () => {
    [idp, upstream, receiver] = await Promise.all([startDevIdp({ scopes: IDP_SCOPES }), startScriptedUpstream(), startOtlpReceiver()]);
    traced = await startRouteGateway({ issuer: idp.issuer, upstreamUrl: upstream.url, head: `tracing: { endpoint: "${receiver.url}", serviceName: gateway-under-test }` });
    token = (await obtainAccessToken(idp, { resource: traced.mcpUrl, scope: 'todo:read' })).accessToken;
  });
  afterAll(async () => {
    await traced?.close();
    await Promise.all([upstream?.close(), receiver?.close(), idp?.close()]);
  });
  afterEach(() => {
    upstream.requests.length = 0;
  });

  const post = (url: string, body: string, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18', ...headers },
      body,
    });

  it('continues the client trace: a server span for the request, a child per step, and the upstream told the upstream-call span', async () => {
    upstream.answer = answer(1);
    const response = await post(traced.mcpUrl, callBody(1), { traceparent: TRACEPARENT });
    expect(response.status).toBe(200);
    await response.text();
    const [request] = await receiver.waitFor((span) => span.traceId === CLIENT_TRACE && span.kind === 2);
    expect(request).toMatchObject({ name: 'POST /mcp', parentSpanId: CLIENT_SPAN, status: 0 });
    expect(request!.resource['service.name']).toBe('gateway-under-test');
    expect(request!.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.route': '/mcp',
      'http.response.status_code': 200,
      'mcp_gateway.route': 'todo',
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'list_todos',
      'mcp_gateway.decision': 'allow',
      'mcp_gateway.reason': 'tool-allowed',
    });
    const steps = await receiver.waitFor((span) => span.parentSpanId === request!.spanId, STEPS.length);
    expect(steps.map((span) => span.name).sort()).toEqual([...STEPS].sort());
    for (const step of steps) expect(step.startNanos >= request!.startNanos && step.endNanos <= request!.endNanos, step.name).toBe(true);
    // The upstream continues the trace from the gateway's upstream-call span, not the client's.
    const upstreamCall = steps.find((span) => span.name === 'call upstream')!;
    expect(upstream.requests[0]?.headers.traceparent).toBe(`00-${CLIENT_TRACE}-${upstreamCall.spanId}-01`);
  });

  it('names a refusal on the span and the step that refused, and forwards nothing', async () => {
    const response = await post(traced.mcpUrl, callBody(2, 'secret_tool'), { traceparent: TRACEPARENT.replace(CLIENT_SPAN, '1111111111111111') });
    expect(await response.json()).toMatchObject({ id: 2, error: { code: -32602 } });
    const [request] = await receiver.waitFor((span) => span.kind === 2 && span.parentSpanId === '1111111111111111');
    expect(request!.attributes).toMatchObject({ 'mcp_gateway.decision': 'deny', 'mcp_gateway.reason': 'tool-denied', 'mcp_gateway.refusal': 'tool_denied' });
    const steps = await receiver.waitFor((span) => span.parentSpanId === request!.spanId, 5);
    expect(steps.find((span) => span.name === 'decide policy')).toMatchObject({ status: 2 });
    expect(steps.map((span) => span.name)).not.toContain('call upstream');
    expect(upstream.requests).toHaveLength(0);
  });

  it('takes a 2026-07-28 request trace context from its _meta when no header carries one', async () => {
    const metaTrace = 'abcdefabcdefabcdefabcdefabcdef01';
    upstream.answer = answer(3);
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', traceparent: `00-${metaTrace}-2222222222222222-01` };
    const response = await post(traced.mcpUrl, callBody(3, 'list_todos', meta), { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'list_todos' });
    expect(response.status).toBe(200);
    await response.text();
    const [request] = await receiver.waitFor((span) => span.traceId === metaTrace && span.kind === 2);
    expect(request!.parentSpanId).toBe('2222222222222222');
    expect(upstream.requests[0]?.headers.traceparent).toMatch(new RegExp(`^00-${metaTrace}-`));
  });

  it('starts a new trace for a request that brings none, and puts no token, argument or secret in any span', async () => {
    upstream.answer = answer(4);
    await (await post(traced.mcpUrl, callBody(4))).text();
    await receiver.waitFor((span) => span.kind === 2 && span.parentSpanId === undefined);
    const everything = JSON.stringify(receiver.spans.map((span) => [span.name, span.attributes, span.resource]));
    expect(everything).not.toContain(token);
    expect(everything).not.toContain(token.split('.')[1]!);
    expect(everything).not.toContain(SECRET_ARGUMENT);
    expect(everything).not.toContain('alice'); // the subject
    expect(receiver.failures).toEqual([]);
  });
});

describe('with tracing off', () => {
  it('sends no span, and the client trace context passes upstream untouched', async () => {
    const [idp, upstream, receiver] = await Promise.all([startDevIdp({ scopes: IDP_SCOPES }), startScriptedUpstream(), startOtlpReceiver()]);
    const gateway = await startRouteGateway({ issuer: idp.issuer, upstreamUrl: upstream.url });
    try {
      const token = (await obtainAccessToken(idp, { resource: gateway.mcpUrl, scope: 'todo:read' })).accessToken;
      upstream.answer = answer(5);
      const response = await fetch(gateway.mcpUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', traceparent: TRACEPARENT },
        body: callBody(5),
      });
      expect(response.status).toBe(200);
      await response.text();
      expect(upstream.requests[0]?.headers.traceparent).toBe(TRACEPARENT);
    } finally {
      await gateway.close();
      await Promise.all([upstream.close(), idp.close()]);
    }
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(receiver.spans).toEqual([]);
    await receiver.close();
  });
});
