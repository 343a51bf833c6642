import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mcpHeaders, openSession, WORKLOADS } from '../../bench/mcp.js';
import { startBenchUpstream, type BenchUpstream } from '../../bench/upstream.js';

/**
 * The benchmark's lean upstream stands in for the SDK on the small call, so that a fixed-rate run
 * measures the proxies rather than the SDK's pauses: it must answer exactly as the SDK does, or
 * the two workloads would not forward the same thing.
 */
describe('bench upstream: the lean small call', () => {
  let upstream: BenchUpstream;
  beforeAll(async () => {
    upstream = await startBenchUpstream();
  });
  afterAll(async () => {
    await upstream.close();
  });

  const call = async (path: string, id: string) => {
    const url = upstream.origin + path;
    const session = await openSession(url, undefined);
    const body = WORKLOADS.find((w) => w.id === 'call')!.body.replaceAll('[<id>]', id);
    const response = await fetch(url, { method: 'POST', headers: mcpHeaders(undefined, session), body });
    const answer = { status: response.status, contentType: response.headers.get('content-type'), sessionId: response.headers.get('mcp-session-id'), text: await response.text() };
    const closed = await fetch(url, { method: 'DELETE', headers: mcpHeaders(undefined, session) });
    await closed.text();
    return { ...answer, session, deleteStatus: closed.status };
  };

  it('answers with the same status, content type and bytes as the SDK, and the session it was asked in', async () => {
    const sdk = await call('/mcp', 'same-1');
    const lean = await call('/mcp-lean', 'same-1');
    expect(lean.status).toBe(200);
    expect(lean.status).toBe(sdk.status);
    expect(lean.contentType).toBe(sdk.contentType);
    expect(lean.text).toBe(sdk.text);
    expect(JSON.parse(lean.text)).toEqual({ jsonrpc: '2.0', id: 'same-1', result: { content: [{ type: 'text', text: 'ok' }] } });
    expect(sdk.sessionId).toBe(sdk.session);
    expect(lean.sessionId).toBe(lean.session);
    expect(lean.deleteStatus).toBe(200);
  });

  it('passes the check the benchmark makes before any load, and refuses what it does not serve', async () => {
    const url = `${upstream.origin}/mcp-lean`;
    const session = await openSession(url, undefined);
    const lean = WORKLOADS.find((w) => w.id === 'call-lean')!;
    const ok = await fetch(url, { method: 'POST', headers: mcpHeaders(undefined, session), body: lean.body.replaceAll('[<id>]', '7') });
    expect(lean.check(ok.status, ok.headers.get('content-type') ?? '', await ok.text(), 0)).toBeUndefined();

    const list = await fetch(url, { method: 'POST', headers: mcpHeaders(undefined, session), body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/list' }) });
    expect(await list.json()).toEqual(expect.objectContaining({ id: 8, error: expect.objectContaining({ code: -32601 }) }));
    const noSession = await fetch(url, { method: 'POST', headers: mcpHeaders(undefined), body: lean.body.replaceAll('[<id>]', '9') });
    expect(noSession.status).toBe(400);
    await noSession.text();
  });
});
