import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { spawnGateway, type GatewayProcess } from '../support/gateway-process.js';
import { mcpRequest, openSession, PROTOCOL_VERSION, toolCall } from '../support/mcp-http.js';
import { startProcessBed, writeSingleRouteConfig, type ProcessBed } from '../support/process-bed.js';

const INJECT_FAULT = resolve('test/support/inject-fault.mjs');

/**
 * An exception nothing catches, on the built binary under load: the process logs it as fatal,
 * writes every line it still held (the access and audit lines of the requests it answered, the
 * one whose response ended in the very turn of the crash included), and exits 1 for its
 * supervisor to replace it.
 */
describe('a fatal error', () => {
  let bed: ProcessBed;
  let gateway: GatewayProcess | undefined;

  beforeAll(async () => {
    bed = await startProcessBed('fatal', 'json');
    await writeSingleRouteConfig(bed);
  }, 30_000);
  afterAll(async () => {
    await gateway?.stop();
    await bed?.close();
  });

  const start = async () => {
    gateway = await spawnGateway(join(bed.dir, 'gateway.yaml'), 10_000, ['--import', INJECT_FAULT]);
    const mcpUrl = `${gateway.url}/mcp`;
    const token = (await obtainAccessToken(bed.idp, { resource: mcpUrl, scope: 'todo:read' })).accessToken;
    return { gateway, mcpUrl, token, sessionId: await openSession(mcpUrl, token) };
  };

  it('is logged as fatal, loses no line already produced, and exits 1', async () => {
    const { gateway: running, mcpUrl, token, sessionId } = await start();
    const exited = new Promise<number | null>((done) => running.child.once('close', done));

    // Steady load while the fault strikes: every answer that reached the client must have its lines.
    let stopLoad = false;
    const answered: string[] = [];
    const load = Array.from({ length: 4 }, async () => {
      while (!stopLoad) {
        try {
          const response = await mcpRequest(mcpUrl, toolCall(1, 'list_todos'), { token, sessionId });
          await response.text();
          if (response.status === 200) answered.push(response.headers.get('x-request-id')!);
        } catch {
          return; // cut by the exit
        }
      }
    });
    // The load is under way (more than ten answers) before the fault strikes.
    await vi.waitFor(() => expect(answered.length).toBeGreaterThan(10), { timeout: 10_000, interval: 20 });
    const fatal = await fetch(mcpUrl, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json, text/event-stream',
        'content-type': 'application/json',
        'mcp-protocol-version': PROTOCOL_VERSION,
        'mcp-session-id': sessionId,
        'x-inject-fault': 'uncaught',
      },
      body: JSON.stringify(toolCall(2, 'list_todos')),
    });
    await fatal.text();
    expect(fatal.status).toBe(200);
    const fatalRequestId = fatal.headers.get('x-request-id')!;

    expect(await exited).toBe(1);
    stopLoad = true;
    await Promise.all(load);

    const logs = running.logs;
    const fatalLine = logs.find((e) => e.level === 60);
    expect(fatalLine).toMatchObject({ event: 'fatal', msg: 'uncaught exception: exiting', err: { message: 'injected fault' } });
    // The request whose response ended in the turn of the crash: its lines were still batched.
    const accessOf = (id: string) => logs.filter((e) => e.event === 'access' && e.requestId === id);
    expect(accessOf(fatalRequestId)).toMatchObject([{ status: 200, path: '/mcp' }]);
    expect(logs.filter((e) => e.event === 'authz' && e.requestId === fatalRequestId)).toMatchObject([{ tool: 'list_todos', decision: 'allow' }]);
    // And every answer the load received (more than ten, awaited above).
    expect(answered.filter((id) => accessOf(id).length !== 1)).toEqual([]);
    expect(answered.filter((id) => !logs.some((e) => e.event === 'authz' && e.requestId === id))).toEqual([]);
    gateway = undefined;
  }, 30_000);

  it('positive control: without the fault the same requests are served and the process keeps running', async () => {
    const { gateway: running, mcpUrl, token, sessionId } = await start();
    const response = await mcpRequest(mcpUrl, toolCall(2, 'list_todos'), { token, sessionId });
    await response.text();
    expect(response.status).toBe(200);
    await new Promise((done) => setTimeout(done, 100));
    expect(running.child.exitCode).toBeNull();
    expect(running.logs.some((e) => e.level === 60)).toBe(false);
    expect(await running.stop()).toBe(0);
    gateway = undefined;
  }, 30_000);
});
