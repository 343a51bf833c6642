import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { obtainAccessToken } from '../../dev/idp.js';
import { SAMPLE_URI_FIXTURES } from '../../dev/upstream.js';
import { startModernUpstream, type ModernUpstream } from '../../dev/upstream-2026.js';
import { mcpRequest, openSession } from '../support/mcp-http.js';
import { connectAuthorizedClient, type AuthorizedClient } from '../support/sdk-client.js';
import { SseReader } from '../support/sse.js';
import { startStack, type Stack } from '../support/stack.js';
import { mcpErrorOf } from '../support/refusals.js';

/**
 * Issue 23 item 1: a resource URI spelled another way must not reach a denied resource. The
 * policy is the issue's: the private note denied, every other note and the files under
 * /public/ allowed. The real SDK upstream acts on the WHATWG parse of the URI (and, for files,
 * joins the template's path onto a root), so each spelling below reads the private resource
 * when it reaches the upstream; through the gateway none of them does, and the upstream's
 * request log shows it never saw one.
 */
const POLICY = `
scopes: [todo:read]
tools:
  "*": [todo:read]
resources:
  "note://private": deny
  "note://*": [todo:read]
  "file:///public/*": [todo:read]
`;
const { privateNote, publicNote, privateFile, publicFile, listedOddly } = SAMPLE_URI_FIXTURES;

/** Spellings of the private note that the allow glob `note://*` matches as written. */
const PRIVATE_NOTE_SPELLINGS = ['note://private/..', 'note://private ', 'note://priv\tate', 'note://private\n', 'NOTE://private', 'note://private:', 'note://private/x/../..'];
/** Spellings of the private file that the allow glob `file:///public/*` matches as written. */
const PRIVATE_FILE_SPELLINGS = [
  'file:///public/../private/x',
  'file:///public/%2e%2e/private/x',
  'file:///public/%2E%2E/private/x',
  'file:///public\\..\\private\\x',
  // Not parsed as a path by the WHATWG parser, but the SDK's template `{+path}` takes the query in.
  'file:///public/x?/../../private/x',
];
const SPELLINGS = [...PRIVATE_NOTE_SPELLINGS, ...PRIVATE_FILE_SPELLINGS];

const forwardedOf = (stack: Stack, method: string) =>
  stack.upstream.requests.filter((record) => record.rpcMethods.includes(method)).map((record) => (record.body as { params?: { uri?: string } }).params?.uri);

describe('resource URIs spelled another way (issue 23 item 1)', () => {
  let stack: Stack;
  let reader: AuthorizedClient;

  beforeAll(async () => {
    stack = await startStack({ responseMode: 'sse', policy: POLICY, uriFixtures: true });
    reader = await connectAuthorizedClient(stack.mcpUrl);
  }, 30_000);
  afterAll(async () => {
    await reader?.close();
    await stack?.close();
  });

  it('the upstream reads every one of these spellings as the private resource, so each is an attack (sanity check)', async () => {
    const direct = new Client({ name: 'direct', version: '1' });
    await direct.connect(new StreamableHTTPClientTransport(new URL(stack.upstream.url)));
    try {
      // The URL parser has changed between Node lines (`note://private/..` is `note://private`
      // up to Node 24, `note://private/` in Node 26): the spellings this runtime's parser reads
      // as the private note are attacks here, and the gateway refuses every one on any runtime.
      const attacks = PRIVATE_NOTE_SPELLINGS.filter((uri) => new URL(uri).href === privateNote.uri);
      expect(attacks.length).toBeGreaterThanOrEqual(4);
      for (const uri of attacks) expect((await direct.readResource({ uri })).contents[0], JSON.stringify(uri)).toMatchObject({ text: privateNote.text });
      for (const uri of PRIVATE_FILE_SPELLINGS) expect((await direct.readResource({ uri })).contents[0], JSON.stringify(uri)).toMatchObject({ text: privateFile.text });
      // And it lists the private resources and the odd spellings, for the gateway to hide.
      const listed = (await direct.listResources()).resources.map((resource) => resource.uri);
      expect(listed).toEqual(expect.arrayContaining([privateNote.uri, privateFile.uri, ...listedOddly]));
    } finally {
      await direct.close();
    }
  });

  it('refuses a read of the private resource by any other spelling of its URI with -32602 naming why, forwarding none', async () => {
    stack.upstream.clearLog();
    for (const uri of SPELLINGS) {
      const error = await mcpErrorOf(reader.client.readResource({ uri }));
      expect(error.code, JSON.stringify(uri)).toBe(-32602);
      expect(error.message).toMatch(new RegExp(`^MCP error -32602: Invalid params: resource URI ${escapeRegExp(JSON.stringify(uri))} (is|has|holds|names|percent-encodes) `));
    }
    expect(forwardedOf(stack, 'resources/read')).toEqual([]);
  });

  it('reads the public note and file in normal form, forwarded, and denies the private note as if it did not exist (positive control)', async () => {
    stack.upstream.clearLog();
    expect((await reader.client.readResource({ uri: publicNote.uri })).contents[0]).toMatchObject({ uri: publicNote.uri, text: publicNote.text });
    expect((await reader.client.readResource({ uri: publicFile.uri })).contents[0]).toMatchObject({ uri: publicFile.uri, text: publicFile.text });
    const denied = await mcpErrorOf(reader.client.readResource({ uri: privateNote.uri }));
    expect([denied.code, denied.message]).toEqual([-32002, `MCP error -32002: Resource not found: ${privateNote.uri}`]);
    expect(forwardedOf(stack, 'resources/read')).toEqual([publicNote.uri, publicFile.uri]);
  });

  it('lists only the resources the policy allows in normal form: private ones and odd spellings are hidden', async () => {
    const listed = (await reader.client.listResources()).resources.map((resource) => resource.uri);
    expect(listed.sort()).toEqual([publicFile.uri, publicNote.uri]);
  });

  it('refuses resources/subscribe of a URI not in normal form, unforwarded, and subscribes to one in normal form', async () => {
    stack.upstream.clearLog();
    for (const uri of SPELLINGS) expect((await mcpErrorOf(reader.client.subscribeResource({ uri }))).code, JSON.stringify(uri)).toBe(-32602);
    await reader.client.subscribeResource({ uri: publicNote.uri });
    expect(forwardedOf(stack, 'resources/subscribe')).toEqual([publicNote.uri]);
  });

  it('drops resources/updated about a denied URI or one not in normal form from the GET stream, and passes one about an allowed URI', async () => {
    const token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject: 'sam' })).accessToken;
    const sessionId = await openSession(stack.mcpUrl, token);
    const response = await mcpRequest(stack.mcpUrl, undefined, { token, sessionId, method: 'GET' });
    expect(response.status).toBe(200);
    const stream = new SseReader(response);
    try {
      const updated = (messages: unknown[]) => messages.filter((message) => (message as { method?: string }).method === 'notifications/resources/updated');
      // The upstream tells every session about all of these; the allowed one last, so that once
      // it arrives every earlier one has been dropped or delivered.
      for (const uri of [privateNote.uri, privateFile.uri, ...SPELLINGS, ...listedOddly, 'note://public ', publicNote.uri]) await stack.upstream.notifyResourceUpdated(uri);
      await stream.readUntil((messages) => updated(messages).length > 0);
      await stream.readFor(200);
      expect(updated(stream.messages)).toEqual([{ jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: publicNote.uri } }]);
    } finally {
      await stream.cancel();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// 2026-07-28: subscriptions/listen
// ---------------------------------------------------------------------------------------------

const V = '2026-07-28';
/** Everything allowed but the secret: a spelling that dodges `secret://*` lands on the catch-all. */
const MODERN_POLICY = `
scopes: [todo:read]
tools:
  "*": [todo:read]
resources:
  "secret://*": deny
  "*": [todo:read]
`;
/** Spellings of secret://admin-notes that `secret://*` does not match as written, and the WHATWG parser reads as it. */
const SECRET_SPELLINGS = ['SECRET://admin-notes', ' secret://admin-notes', 'secre\tt://admin-notes', 'secret:\n//admin-notes', '\x01secret://admin-notes'];

function listen(url: string, token: string, uris: string[], id: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': V, 'mcp-method': 'subscriptions/listen' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'subscriptions/listen',
      params: { notifications: { resourceSubscriptions: uris }, _meta: { 'io.modelcontextprotocol/protocolVersion': V, 'io.modelcontextprotocol/clientCapabilities': {} } },
    }),
  });
}

describe('2026-07-28 subscriptions/listen with resource URIs spelled another way (issue 23 item 1)', () => {
  let upstream: ModernUpstream;
  let stack: Stack;
  let token: string;

  beforeAll(async () => {
    upstream = await startModernUpstream();
    stack = await startStack({ responseMode: 'json', upstreamUrl: upstream.url, policy: MODERN_POLICY });
    token = (await obtainAccessToken(stack.idp, { resource: stack.mcpUrl, scope: 'todo:read', subject: 'lena' })).accessToken;
  }, 30_000);
  afterAll(async () => {
    await stack?.close();
    await upstream?.close();
  });

  it('the WHATWG parser reads each spelling as the secret (sanity check)', () => {
    for (const uri of SECRET_SPELLINGS) expect(new URL(uri).href, JSON.stringify(uri)).toBe('secret://admin-notes');
  });

  it('refuses a listen stream subscribing to a URI not in normal form with -32602 naming it, unforwarded, alone or beside an allowed one', async () => {
    upstream.clearLog();
    for (const [i, uri] of SECRET_SPELLINGS.entries()) {
      for (const uris of [[uri], ['todo://list', uri]]) {
        const response = await listen(stack.mcpUrl, token, uris, `l-${i}`);
        expect(response.status).toBe(200);
        const body = (await response.json()) as { id: string; error: { code: number; message: string } };
        expect(body.id).toBe(`l-${i}`);
        expect(body.error.code).toBe(-32602);
        expect(body.error.message.startsWith(`Invalid params: resource URI ${JSON.stringify(uri)} `)).toBe(true);
      }
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it('opens a listen stream on an allowed URI in normal form, and denies the secret in normal form unforwarded (positive control)', async () => {
    upstream.clearLog();
    const denied = await listen(stack.mcpUrl, token, ['secret://admin-notes'], 'l-secret');
    expect(await denied.json()).toEqual({ jsonrpc: '2.0', id: 'l-secret', error: { code: -32602, message: 'Resource not found' } });
    expect(upstream.requests).toHaveLength(0);
    const allowed = await listen(stack.mcpUrl, token, ['todo://list'], 'l-ok');
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('content-type')).toContain('text/event-stream');
    const stream = new SseReader(allowed);
    try {
      await stream.readUntil((messages) => messages.some((message) => (message as { method?: string }).method === 'notifications/subscriptions/acknowledged'));
      upstream.notifyResourceUpdated('todo://list');
      await stream.readUntil((messages) => messages.some((message) => (message as { method?: string }).method === 'notifications/resources/updated'));
    } finally {
      await stream.cancel();
    }
    expect(upstream.requests.map((record) => (record.body as { method?: string }).method)).toEqual(['subscriptions/listen']);
  });
});

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
