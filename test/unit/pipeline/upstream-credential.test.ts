import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRefusal } from '../../../src/errors.js';
import { RouteServices } from '../../../src/http/pipeline/route-services.js';
import { Forwarder, type ForwardOptions } from '../../../src/proxy/forward.js';
import { upstreamHeaderLines } from '../../../src/proxy/headers.js';
import { upstreamAnswer, type RequestSpec, type TestExchange } from '../../support/pipeline-exchange.js';
import { PipelineWorld, toolCall, worldsClosedAfterAll } from '../../support/pipeline-services.js';

/**
 * The upstream credential stage and the forward stage's part in it (routes[].upstreamAuth), with
 * a static secret in a real file and the one stand-in of forward.test.ts: a forwarder that
 * records what it was handed and answers with the statuses a test queues, so an upstream 401
 * and the one re-send it causes can be watched without a socket.
 */
class QueuedForwarder extends Forwarder {
  readonly calls: { req: IncomingMessage; options: ForwardOptions }[] = [];
  readonly statuses: number[] = [];

  override forward(req: IncomingMessage, _res: ServerResponse, options: ForwardOptions): Promise<IncomingMessage> {
    this.calls.push({ req, options });
    const status = this.statuses.shift() ?? 200;
    return Promise.resolve(upstreamAnswer(status, { headers: { 'content-type': 'application/json', 'content-length': '2' }, body: '{}' }));
  }
}

/** The header lines the real forwarder would send for a recorded call, as name → values. */
function sentHeaders({ req, options }: QueuedForwarder['calls'][number]): Record<string, string[]> {
  const lines = upstreamHeaderLines(req.headers, options.forwardHeaders, options.body, options.gatewayHeaders, options.target.host);
  const headers: Record<string, string[]> = {};
  for (let i = 0; i < lines.length; i += 2) (headers[lines[i]!] ??= []).push(lines[i + 1]!);
  return headers;
}

describe('upstream credential and forward stages', () => {
  let dir: string;
  const closedAfterAll = worldsClosedAfterAll();
  const staticWorld = () => closedAfterAll({ forwarder: new QueuedForwarder(), route: { upstreamAuth: { mode: 'static', header: 'x-api-key', valueFile: join(dir, 'api-key'), prefix: '' } } });
  const forwarderOf = (world: PipelineWorld) => world.forwarder as QueuedForwarder;
  /** Brought through every stage up to and including forward; resolves with the refusal, if any. */
  const forwarded = async (world: PipelineWorld, spec: RequestSpec): Promise<{ test: TestExchange; refusal: unknown }> => {
    const test = await world.request(spec);
    try {
      await world.through(test, 'authenticate', 'routeScopes', 'session', 'readAndDecide', 'budgets', 'upstreamCredential', 'forward');
      return { test, refusal: undefined };
    } catch (error) {
      if (!isRefusal(error)) throw error;
      return { test, refusal: error };
    }
  };
  const post = { method: 'POST' as const, body: toolCall(1, 'list_todos'), headers: { 'x-api-key': 'client-chosen' } };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-upauth-stage-'));
    await writeFile(join(dir, 'api-key'), 'the-secret\n');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('finds a static credential without a promise, and sends it in its header, never the client’s copy or token', async () => {
    const world = await staticWorld();
    const test = await world.request(post);
    await world.through(test, 'authenticate', 'routeScopes', 'session', 'readAndDecide', 'budgets');
    expect(world.stages.upstreamCredential(test.exchange)).toBeUndefined();
    expect(test.exchange.upstreamCredential).toBe('the-secret');
    await world.through(test, 'forward');
    const headers = sentHeaders(forwarderOf(world).calls[0]!);
    expect(headers['x-api-key']).toEqual(['the-secret']);
    expect(headers.authorization).toBeUndefined();
    expect(test.exchange.upstream?.statusCode).toBe(200);
    expect(world.audits[0]).toMatchObject({ upstreamAuth: 'static', status: 200 });
  });

  it('on an upstream 401 re-sends a POST once with the same bytes; a second 401 is refused with 502', async () => {
    const world = await staticWorld();
    forwarderOf(world).statuses.push(401);
    const once = await forwarded(world, post);
    expect(once.refusal).toBeUndefined();
    expect(once.test.exchange.upstream?.statusCode).toBe(200);
    const [first, second] = forwarderOf(world).calls;
    expect(second!.options.body).toBe(first!.options.body);
    expect(sentHeaders(second!)['x-api-key']).toEqual(['the-secret']);

    forwarderOf(world).statuses.push(401, 401);
    const before = forwarderOf(world).calls.length;
    const twice = await forwarded(world, post);
    expect(twice.refusal).toMatchObject({ code: 'upstream_credential_rejected' });
    expect(forwarderOf(world).calls.length - before).toBe(2);
    expect(twice.test.exchange.upstream).toBeUndefined();
  });

  it('does not re-send a GET: 503 with Retry-After 1', async () => {
    const world = await staticWorld();
    forwarderOf(world).statuses.push(401);
    const { refusal } = await forwarded(world, { method: 'GET', headers: { accept: 'text/event-stream' } });
    expect(refusal).toMatchObject({ code: 'upstream_credential_unavailable', details: { retryAfterSeconds: 1 } });
    expect(forwarderOf(world).calls).toHaveLength(1);
  });

  it('a route without upstreamAuth relays an upstream 401 as it is (positive control)', async () => {
    const world = await closedAfterAll({ forwarder: new QueuedForwarder() });
    forwarderOf(world).statuses.push(401);
    const { test, refusal } = await forwarded(world, post);
    expect(refusal).toBeUndefined();
    expect(test.exchange.upstream?.statusCode).toBe(401);
    expect(forwarderOf(world).calls).toHaveLength(1);
  });

  it('refuses to build a route with upstreamAuth but no credential source', async () => {
    const world = await staticWorld();
    expect(() => new RouteServices(world.route, { ...world.deps, upstreamCredentials: undefined })).toThrow(/has upstreamAuth but no credential source/);
  });
});
