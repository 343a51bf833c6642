import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startStack, type Stack } from '../support/stack.js';

/**
 * Logs and metrics for what operators ask of a gateway: an access line per request with its
 * id, an audit event per decision with the outcome, and Prometheus metrics on the admin
 * listener, for allowed, denied, stepped-up and invalid-token requests (real IdP, real SDK
 * upstream).
 */
describe('observability', () => {
  let stack: Stack;
  let reader: string;
  let adminUrl: string;

  const metric = async (name: string, labels: Record<string, string> = {}): Promise<number> => {
    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
      if (wanted.every((pair) => line.includes(pair))) total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return total;
  };

  beforeAll(async () => {
    stack = await startStack({
      responseMode: 'json',
      extraConfig: 'admin: { listen: { host: 127.0.0.1, port: 0 } }',
      routeConfig: '    audit: { arguments: true, redact: [title_secret] }',
    });
    adminUrl = stack.gateway.adminUrl!;
    reader = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject: 'olga' })).accessToken;
  }, 30_000);
  afterAll(() => stack?.close());

  it('serves metrics, liveness and readiness on the admin listener only', async () => {
    expect(adminUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(adminUrl).not.toBe(stack.gateway.url);
    const metrics = await fetch(`${adminUrl}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toContain('text/plain');
    expect(await metrics.text()).toContain('# TYPE mcp_gateway_requests_total counter');
    expect((await fetch(`${adminUrl}/healthz`)).status).toBe(200);
    expect(await (await fetch(`${adminUrl}/readyz`)).json()).toMatchObject({ status: 'ready' });
    // Metrics are not published on the public listener.
    expect((await fetch(`${stack.gateway.url}/metrics`)).status).toBe(404);
  });

  it('counts and audits an allowed call, with the upstream status and latency, and logs its access line', async () => {
    const sessionId = await openSession(stack.mcpUrl, reader);
    const before = stack.logs.length;
    const allowedBefore = await metric('mcp_gateway_decisions_total', { route: 'todo', effect: 'allow', reason: 'tool-allowed' });
    const latencyBefore = await metric('mcp_gateway_upstream_response_seconds_count', { route: 'todo' });
    const response = await mcpRequest(stack.mcpUrl, toolCall(7, 'list_todos'), { token: reader, sessionId });
    expect(response.status).toBe(200);
    await response.text();
    const requestId = response.headers.get('x-request-id');
    await waitForLog(stack, before, (e) => e.event === 'access' && e.requestId === requestId);
    const entries = stack.logs.slice(before).filter((e) => e.requestId === requestId);
    expect(entries.find((e) => e.event === 'authz')).toMatchObject({
      route: 'todo', sub: 'olga', method: 'tools/call', tool: 'list_todos', decision: 'allow', reason: 'tool-allowed',
      rule: 'tools["list_todos"]', status: 200, upstreamStatus: 200,
    });
    expect(typeof entries.find((e) => e.event === 'authz')!.upstreamMs).toBe('number');
    expect(entries.find((e) => e.event === 'access')).toMatchObject({ method: 'POST', path: '/mcp', status: 200, route: 'todo', sub: 'olga', remote: '127.0.0.1' });
    expect(await metric('mcp_gateway_decisions_total', { route: 'todo', effect: 'allow', reason: 'tool-allowed' })).toBe(allowedBefore + 1);
    expect(await metric('mcp_gateway_upstream_response_seconds_count', { route: 'todo' })).toBe(latencyBefore + 1);
    expect(await metric('mcp_gateway_requests_total', { route: 'todo', method: 'POST', status: '200' })).toBeGreaterThanOrEqual(2); // initialize, the call
    expect(await metric('mcp_gateway_requests_total', { route: 'todo', method: 'POST', status: '202' })).toBeGreaterThanOrEqual(1); // initialized
  });

  it('counts and audits a denied call and a step-up, neither forwarded', async () => {
    const sessionId = await openSession(stack.mcpUrl, reader);
    stack.upstream.clearLog();
    const before = stack.logs.length;
    const deniedBefore = await metric('mcp_gateway_decisions_total', { effect: 'deny', reason: 'tool-denied' });
    const stepUpBefore = await metric('mcp_gateway_decisions_total', { effect: 'step-up', reason: 'tool-scopes-missing' });
    const denied = await mcpRequest(stack.mcpUrl, toolCall(8, 'secret_tool'), { token: reader, sessionId });
    expect(denied.status).toBe(200);
    await denied.text();
    const stepUp = await mcpRequest(stack.mcpUrl, toolCall(9, 'add_todo', { title: 'visible', title_secret: 'hunter2' }), { token: reader, sessionId });
    expect(stepUp.status).toBe(403);
    await stepUp.text();
    expect(stack.upstream.requests).toHaveLength(0);
    await waitForLog(stack, before, (e) => e.event === 'access' && e.status === 403);
    const audits = stack.logs.slice(before).filter((e) => e.event === 'authz');
    expect(audits).toEqual([
      expect.objectContaining({ tool: 'secret_tool', decision: 'deny', reason: 'tool-denied', status: 200 }),
      // Arguments only because this route opts in, with the redacted key's value withheld.
      expect.objectContaining({ tool: 'add_todo', decision: 'step-up', reason: 'tool-scopes-missing', status: 403, arguments: { title: 'visible', title_secret: '[redacted]' } }),
    ]);
    expect(audits.every((e) => e.upstreamStatus === undefined)).toBe(true);
    expect(JSON.stringify(stack.logs)).not.toContain('hunter2');
    expect(await metric('mcp_gateway_decisions_total', { effect: 'deny', reason: 'tool-denied' })).toBe(deniedBefore + 1);
    expect(await metric('mcp_gateway_decisions_total', { effect: 'step-up', reason: 'tool-scopes-missing' })).toBe(stepUpBefore + 1);
    expect(await metric('mcp_gateway_requests_total', { route: 'todo', method: 'POST', status: '403' })).toBeGreaterThanOrEqual(1);
  });

  it('counts token failures by reason, logs the refusal on the access line, and never logs the token', async () => {
    const missingBefore = await metric('mcp_gateway_token_failures_total', { route: 'todo', reason: 'missing' });
    const malformedBefore = await metric('mcp_gateway_token_failures_total', { route: 'todo', reason: 'malformed' });
    const signatureBefore = await metric('mcp_gateway_token_failures_total', { route: 'todo', reason: 'signature' });
    const before = stack.logs.length;
    const post = (authorization?: string) =>
      fetch(stack.mcpUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify(toolCall(1, 'list_todos')),
      });
    expect((await post()).status).toBe(401);
    expect((await post('Bearer not-a-jwt')).status).toBe(401);
    const [header, payload] = reader.split('.');
    const forged = `${header}.${payload}.${Buffer.from('forged signature').toString('base64url')}`;
    expect((await post(`Bearer ${forged}`)).status).toBe(401);
    expect(await metric('mcp_gateway_token_failures_total', { route: 'todo', reason: 'missing' })).toBe(missingBefore + 1);
    expect(await metric('mcp_gateway_token_failures_total', { route: 'todo', reason: 'malformed' })).toBe(malformedBefore + 1);
    expect(await metric('mcp_gateway_token_failures_total', { route: 'todo', reason: 'signature' })).toBe(signatureBefore + 1);
    await waitForLog(stack, before, () => stack.logs.slice(before).filter((e) => e.event === 'access').length === 3);
    const lines = stack.logs.slice(before).filter((e) => e.event === 'access');
    expect(lines.map((e) => [e.status, e.refusal])).toEqual([[401, 'missing_token'], [401, 'invalid_token'], [401, 'invalid_token']]);
    // No decision was made for a request whose token failed: nothing to audit.
    expect(stack.logs.slice(before).some((e) => e.event === 'authz')).toBe(false);
    expect(JSON.stringify(stack.logs)).not.toContain(forged);
    expect(JSON.stringify(stack.logs)).not.toContain(reader);
  });

  it('counts open SSE streams while they are open', async () => {
    const sessionId = await openSession(stack.mcpUrl, reader);
    const before = await metric('mcp_gateway_sse_streams_open', { route: 'todo' });
    const controller = new AbortController();
    const stream = await mcpRequest(stack.mcpUrl, undefined, { token: reader, sessionId, method: 'GET', signal: controller.signal });
    expect(stream.status).toBe(200);
    expect(await metric('mcp_gateway_sse_streams_open', { route: 'todo' })).toBe(before + 1);
    controller.abort();
    for (let i = 0; i < 50 && (await metric('mcp_gateway_sse_streams_open', { route: 'todo' })) !== before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await metric('mcp_gateway_sse_streams_open', { route: 'todo' })).toBe(before);
  });

  it('counts JWKS fetches and reports store errors and reloads (zero here)', async () => {
    expect(await metric('mcp_gateway_jwks_refreshes_total', { issuer: stack.idp.issuer, result: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(await metric('mcp_gateway_store_errors_total')).toBe(0);
    expect(await metric('mcp_gateway_config_reloads_total', { result: 'refused' })).toBe(0);
    expect(await metric('mcp_gateway_config_last_reload_refused')).toBe(0);
  });

  it('answers CORS preflights for allowed origins without a token, exposes the challenge, and refuses others', async () => {
    const origin = new URL(stack.gateway.publicUrl).origin;
    const preflight = await fetch(stack.mcpUrl, {
      method: 'OPTIONS',
      headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, mcp-protocol-version' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(origin);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('GET, POST, DELETE');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('mcp-session-id');
    const challenge = await fetch(stack.mcpUrl, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: '{}' });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('access-control-allow-origin')).toBe(origin);
    expect(challenge.headers.get('access-control-expose-headers')).toContain('WWW-Authenticate');
    expect(challenge.headers.get('access-control-expose-headers')).toContain('Mcp-Session-Id');
    const foreign = await fetch(stack.mcpUrl, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });
});

async function waitForLog(stack: Stack, from: number, found: (entry: Record<string, unknown>) => boolean): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (stack.logs.slice(from).some(found)) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error('log entry did not appear');
}
