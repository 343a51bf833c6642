import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { spawnGateway, type GatewayProcess } from '../support/gateway-process.js';
import { mcpRequest, openSession, toolCall } from '../support/mcp-http.js';
import { startProcessBed, type ProcessBed } from '../support/process-bed.js';

/**
 * SIGTERM under load, on the built binary as Kubernetes runs it: readiness fails at once, no
 * request in flight is lost (a slow streamed tool call included), the GET stream is ended
 * cleanly rather than cut, and the process exits 0.
 */
describe('graceful shutdown', () => {
  let bed: ProcessBed;
  let gateway: GatewayProcess | undefined;

  beforeAll(async () => {
    bed = await startProcessBed('shutdown', 'sse');
  }, 30_000);
  afterAll(async () => {
    await gateway?.stop();
    await bed?.close();
  });

  it('drains: readiness fails, in-flight requests finish, SSE streams end cleanly, exit 0', async () => {
    const { idp, upstream, dir } = bed;
    await writeFile(
      join(dir, 'gateway.yaml'),
      [
        'listen: { host: 127.0.0.1, port: 0 }',
        'admin: { listen: { host: 127.0.0.1, port: 0 } }',
        // The drain delay is the window in which the load (below) must see readiness fail and stop:
        // a second, so a stalled test process cannot miss it; the slow call outlasts it.
        'shutdown: { drainDelay: 1s, gracePeriod: 5s }',
        'issuers:',
        `  - issuer: ${idp.issuer}`,
        'routes:',
        `  - { name: todo, path: /mcp, upstream: "${upstream.url}", policy: todo.yaml }`,
      ].join('\n'),
    );
    gateway = await spawnGateway(join(dir, 'gateway.yaml'));
    const adminUrl = gateway.logs.find((e) => e.msg === 'gateway listening')!.adminUrl as string;
    const mcpUrl = `${gateway.url}/mcp`;
    const token = (await obtainAccessToken(idp, { resource: mcpUrl, scope: 'todo:read' })).accessToken;
    const sessionId = await openSession(mcpUrl, token);

    // The server's GET stream: open until shutdown ends it.
    const stream = await mcpRequest(mcpUrl, undefined, { token, sessionId, method: 'GET' });
    expect(stream.status).toBe(200);
    const streamEnded = (async () => {
      const reader = stream.body!.getReader();
      for (;;) if ((await reader.read()).done) return 'ended cleanly';
    })();

    // Steady load, and one slow call (about 2 s of progress) still running at SIGTERM and after
    // the listener closes. Like a load balancer, the load sends nothing new once readiness has
    // failed (that is what shutdown.drainDelay is for); every request it started must still be
    // answered in full.
    let stopLoad = false;
    const outcomes: (number | string)[] = [];
    const load = Array.from({ length: 4 }, async () => {
      while (!stopLoad) {
        try {
          const response = await mcpRequest(mcpUrl, toolCall(1, 'list_todos'), { token, sessionId });
          await response.text();
          outcomes.push(response.status);
        } catch (error) {
          // Recorded by its error code: any is a failure below.
          outcomes.push((error as Error & { cause?: { code?: string } }).cause?.code ?? 'error');
          return;
        }
      }
    });
    // The load is under way: more than ten calls answered 200 before the signal.
    await vi.waitFor(() => expect(outcomes.filter((o) => o === 200).length).toBeGreaterThan(10), { timeout: 10_000, interval: 20 });

    // The slow call reports progress, so its first event shows it is running upstream.
    const slowCall = toolCall(2, 'slow_progress', { steps: 8, delayMs: 250 });
    const slowResponse = await mcpRequest(mcpUrl, { ...slowCall, params: { ...slowCall.params, _meta: { progressToken: 'slow' } } }, { token, sessionId });
    const slowReader = slowResponse.body!.getReader();
    const decoder = new TextDecoder();
    let slowBody = '';
    const firstChunk = await slowReader.read();
    expect(firstChunk.done).toBe(false);
    slowBody += decoder.decode(firstChunk.value, { stream: true });
    const slow = (async () => {
      for (;;) {
        const chunk = await slowReader.read();
        if (chunk.done) return { status: slowResponse.status, body: slowBody };
        slowBody += decoder.decode(chunk.value, { stream: true });
      }
    })();

    // 'close': the process has exited and its output is read to the end.
    const exited = new Promise<number | null>((resolve) => gateway!.child.once('close', resolve));
    gateway.child.kill('SIGTERM');
    // Within the drain delay: still listening, but no longer ready as soon as the signal is
    // handled. Asked until it says so (a refused connection here means the drain delay passed).
    let readiness = await fetch(`${adminUrl}/readyz`);
    for (const deadline = Date.now() + 5_000; readiness.status !== 503 && Date.now() < deadline; ) {
      await readiness.body?.cancel();
      await new Promise((resolve) => setTimeout(resolve, 20));
      readiness = await fetch(`${adminUrl}/readyz`);
    }
    stopLoad = true;
    expect(readiness.status).toBe(503);
    expect(await readiness.json()).toEqual({ status: 'shutting down' });

    const slowResult = await slow;
    expect(slowResult.status).toBe(200);
    expect(slowResult.body).toContain('"result"');
    expect(await streamEnded).toBe('ended cleanly');
    expect(await exited).toBe(0);
    await Promise.all(load);

    // Every request the load started was answered in full: no 5xx, no cut connection.
    expect(outcomes.filter((o) => o !== 200)).toEqual([]);
    expect(gateway.logs.some((e) => e.event === 'shutdown' && e.msg === 'stopped')).toBe(true);
    // No log line lost on the way out (they are written in batches, the last at exit): one
    // access line per POST answered (initialize, initialized, the load, the slow call), one for
    // the ended GET stream, and one audit line per tool call.
    const access = (method: string) => gateway!.logs.filter((e) => e.event === 'access' && e.path === '/mcp' && e.method === method);
    expect(access('POST')).toHaveLength(outcomes.length + 3);
    expect(access('GET')).toHaveLength(1);
    const audited = (tool: string) => gateway!.logs.filter((e) => e.event === 'authz' && e.tool === tool && e.decision === 'allow');
    expect(audited('list_todos')).toHaveLength(outcomes.length);
    expect(audited('slow_progress')).toHaveLength(1);
    gateway = undefined;
  }, 30_000);
});
