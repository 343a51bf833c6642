import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { obtainAccessToken, startDevIdp, type DevIdp } from '../../dev/idp.js';
import { startSampleUpstream, type SampleUpstream } from '../../dev/upstream.js';
import { accessTokenHash } from '../../src/auth/dpop.js';
import type { Gateway } from '../../src/gateway.js';
import { MemoryStore } from '../../src/store/memory.js';
import { initializeRequest, PROTOCOL_VERSION } from '../support/mcp-http.js';
import { captureLogs } from '../support/log-capture.js';
import { startSingleRouteGateway } from '../support/single-route-gateway.js';
import { IDP_SCOPES, TODO_POLICY } from '../support/stack.js';

/**
 * Issue 23, "Exhaustion", end to end with the real IdP and the real SDK upstream: one token can
 * neither lock everyone else out of new sessions (DPoP proof records) nor make the gateway keep
 * what a client chose to send (an initialize's protocolVersion). The memory store is built small,
 * so "filling the cap" takes dozens of requests instead of 100,000.
 */
interface ClientKey {
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
  readonly alg: 'ES256';
}

async function clientKey(): Promise<ClientKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, publicJwk: await exportJWK(publicKey), alg: 'ES256' };
}

/** Tokens are obtained before the gateway listens: one audience, whatever port it gets. */
const RESOURCE = 'http://localhost:8443/mcp';
/** The store's caps in these tests: sessions, proofs in all, proofs per principal. */
const CAPS = { maxEntries: 40, maxReplayEntries: 30, maxReplayEntriesPerOwner: 20 };

describe('exhaustion', () => {
  let idp: DevIdp;
  let upstream: SampleUpstream;
  let dir: string;
  let gateway: Gateway;
  let store: MemoryStore;
  let logs: Record<string, unknown>[];
  const keys: Record<'mallory' | 'dora' | 'dave', ClientKey> = {} as never;
  const tokens: Record<'mallory' | 'dora' | 'dave' | 'bob', string> = {} as never;

  const proof = (who: keyof typeof keys, jti = randomUUID()) =>
    new SignJWT({ htm: 'POST', htu: `${gateway.url}/mcp`, jti, iat: Math.floor(Date.now() / 1000), ath: accessTokenHash(tokens[who]) })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: keys[who].alg, jwk: keys[who].publicJwk })
      .sign(keys[who].privateKey);

  /** version null: no MCP-Protocol-Version header. */
  const post = (headers: Record<string, string>, body: unknown, version: string | null = PROTOCOL_VERSION) =>
    fetch(`${gateway.url}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(version ? { 'mcp-protocol-version': version } : {}), ...headers },
      body: JSON.stringify(body),
    });

  /** A DPoP request with its own fresh proof (or the one given); the answer's status and message. */
  const dpopCall = async (who: keyof typeof keys, dpop?: string) => {
    const response = await post({ authorization: `DPoP ${tokens[who]}`, dpop: dpop ?? (await proof(who)) }, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const text = await response.text();
    return { status: response.status, text, challenge: response.headers.get('www-authenticate') ?? '' };
  };

  /** Bob (a plain Bearer token, no DPoP) opens a session: the everyone-else of the issue. */
  const bobInitializes = async () => {
    const response = await post({ authorization: `Bearer ${tokens.bob}` }, initializeRequest());
    await response.text();
    return { status: response.status, sessionId: response.headers.get('mcp-session-id') };
  };

  beforeAll(async () => {
    idp = await startDevIdp({ scopes: IDP_SCOPES });
    upstream = await startSampleUpstream({ responseMode: 'json' });
    dir = await mkdtemp(join(tmpdir(), 'mcp-gw-exhaustion-'));
    await writeFile(join(dir, 'todo.yaml'), TODO_POLICY);
    for (const who of ['mallory', 'dora', 'dave'] as const) keys[who] = await clientKey();
    // Mallory's token is genuine and DPoP-bound, but lacks the route's scope (todo:read).
    tokens.mallory = (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'other:scope', subject: 'mallory', dpopKey: keys.mallory })).accessToken;
    tokens.dora = (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'dora', dpopKey: keys.dora })).accessToken;
    tokens.dave = (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'dave', dpopKey: keys.dave })).accessToken;
    tokens.bob = (await obtainAccessToken(idp, { resource: RESOURCE, scope: 'todo:read', subject: 'bob' })).accessToken;
  }, 30_000);

  beforeEach(async () => {
    store = new MemoryStore(CAPS);
    const captured = captureLogs();
    logs = captured.logs;
    gateway = await startSingleRouteGateway({ dir, issuerYaml: `{ issuer: "${idp.issuer}", audiences: ["${RESOURCE}"] }`, upstreamUrl: upstream.url, store, logger: captured.logger });
    upstream.clearLog();
  });

  afterEach(async () => {
    await gateway.close(); // closes the store too
  });

  afterAll(async () => {
    await Promise.all([upstream?.close(), idp?.close()]);
    await rm(dir, { recursive: true, force: true });
  });

  describe('DPoP proof records cannot lock anyone out', () => {
    it('a flood refused for the route scope records no proof, and another user still opens a session', async () => {
      // More refused requests than the store has entries at all: each once stored its jti first.
      for (let i = 0; i < CAPS.maxEntries + 20; i++) {
        const { status, challenge } = await dpopCall('mallory');
        expect(status).toBe(403);
        expect(challenge).toContain('error="insufficient_scope"');
      }
      expect(store.usage).toMatchObject({ replayEntries: 0, entries: 0 });
      expect(upstream.requests).toHaveLength(0);
      // Not recorded, so the same proof meets the same refusal, never "already used".
      const reused = await proof('mallory');
      expect((await dpopCall('mallory', reused)).status).toBe(403);
      expect((await dpopCall('mallory', reused)).status).toBe(403);

      const bob = await bobInitializes();
      expect(bob.status).toBe(200);
      expect(bob.sessionId).toBeTruthy();
      expect(store.usage.entries).toBe(2); // the binding and bob's index
      // Refused before the record, yet the access log still names who flooded (read last: each
      // line is written as its response closes).
      const refused = logs.filter((entry) => entry.event === 'access' && entry.status === 403);
      expect(refused.length).toBeGreaterThanOrEqual(CAPS.maxEntries + 20);
      for (const entry of refused) expect(entry).toMatchObject({ sub: 'mallory', refusal: 'insufficient_scope' });
    });

    it('positive control: a scoped flood is recorded, replays are refused, the principal stops at its quota, the space at its cap; sessions go on', async () => {
      const used: string[] = [];
      for (let i = 0; i < CAPS.maxReplayEntriesPerOwner; i++) {
        const dpop = await proof('dora');
        used.push(dpop);
        const { status } = await dpopCall('dora', dpop);
        expect(status).not.toBe(401); // forwarded: the stateful upstream answers a session-less call itself
        expect([403, 429, 503]).not.toContain(status);
      }
      expect(upstream.requests).toHaveLength(CAPS.maxReplayEntriesPerOwner);
      expect(store.usage.replayEntries).toBe(CAPS.maxReplayEntriesPerOwner);
      const replay = await dpopCall('dora', used[3]);
      expect(replay.status).toBe(401);
      expect(replay.text).toContain('The DPoP proof was already used');

      // Dora is at her quota: refused on her own (429), nothing recorded or forwarded.
      const overQuota = await dpopCall('dora');
      expect(overQuota.status).toBe(429);
      expect(store.usage.replayEntries).toBe(CAPS.maxReplayEntriesPerOwner);

      // Dave, another principal, still records until the space as a whole is full...
      const room = CAPS.maxReplayEntries - CAPS.maxReplayEntriesPerOwner;
      for (let i = 0; i < room; i++) expect((await dpopCall('dave')).status).not.toBe(503);
      expect(store.usage.replayEntries).toBe(CAPS.maxReplayEntries);
      // ...then DPoP requests fail closed (503, nothing forwarded), a replay still refused as one.
      upstream.clearLog();
      const full = await dpopCall('dave');
      expect(full.status).toBe(503);
      expect(full.text).toContain('DPoP replay store full');
      expect((await dpopCall('dora', used[0])).status).toBe(401);
      expect(upstream.requests).toHaveLength(0);

      // A full replay space takes nothing from sessions.
      const bob = await bobInitializes();
      expect(bob.status).toBe(200);
      expect(bob.sessionId).toBeTruthy();
    });
  });

  describe('an initialize cannot make the gateway keep what the client sent', () => {
    const hugeVersion = 'v'.repeat(1_000_000);

    it('a 1 MB protocolVersion is answered, and the session is bound with a version the gateway speaks', async () => {
      const sessionIds: string[] = [];
      for (let i = 0; i < 5; i++) {
        const request = initializeRequest(i);
        const response = await post({ authorization: `Bearer ${tokens.bob}` }, { ...request, params: { ...request.params, protocolVersion: hugeVersion } }, null);
        await response.text();
        expect(response.status).toBe(200);
        sessionIds.push(response.headers.get('mcp-session-id')!);
      }
      // Five 1 MB versions sent; what the store holds is a few hundred bytes per session.
      expect(store.usage.entries).toBe(6);
      expect(store.usage.bytes).toBeLessThan(6 * 1024);
      for (const id of sessionIds) {
        const stored = JSON.parse((await store.get(`session:todo:${id}`))!) as { protocolVersion: string };
        // No header, unsupported in the body: the version the gateway assumed (Streamable HTTP §Protocol Version Header).
        expect(stored.protocolVersion).toBe('2025-03-26');
      }
    });

    it('positive control: a supported protocolVersion is bound as asked', async () => {
      const response = await post({ authorization: `Bearer ${tokens.bob}` }, initializeRequest(), null);
      await response.text();
      expect(response.status).toBe(200);
      const stored = JSON.parse((await store.get(`session:todo:${response.headers.get('mcp-session-id')}`))!) as { protocolVersion: string };
      expect(stored.protocolVersion).toBe(PROTOCOL_VERSION);
    });

    it('a store without room refuses the initialize before the upstream opens a session', async () => {
      // Bob opens sessions until the session store has no room: every session the upstream
      // opened was bound and given to him; the first refusal comes before forwarding.
      const upstreamSessions = upstream.sessionCount();
      let opened = 0;
      let last = await bobInitializes();
      while (last.status === 200 && opened < CAPS.maxEntries) {
        opened++;
        last = await bobInitializes();
      }
      expect(last.status).toBe(503);
      expect(last.sessionId).toBeNull();
      expect(opened).toBeGreaterThan(CAPS.maxEntries / 2);
      expect(upstream.sessionCount() - upstreamSessions).toBe(opened);
      // Room again once sessions end: DELETE through the gateway forgets them.
      const ended = await fetch(`${gateway.url}/mcp`, { method: 'DELETE', headers: { authorization: `Bearer ${tokens.bob}`, 'mcp-protocol-version': PROTOCOL_VERSION, 'mcp-session-id': await store.indexMembers(`sessions-of:todo:${JSON.stringify([idp.issuer, 'bob'])}`).then((ids) => ids[0]!) } });
      expect(ended.status).toBeLessThan(300);
      await ended.text();
      expect((await bobInitializes()).status).toBe(200);
    });
  });
});
