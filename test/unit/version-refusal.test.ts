import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Refusal } from '../../src/errors.js';
import { renderRefusal } from '../../src/http/refusal.js';
import { parseMcpBody } from '../../src/mcp/message.js';
import { checkMirroredHeaders } from '../../src/http/mirrored-headers.js';
import { REMOVED_IN_STATELESS, type ProtocolVersion } from '../../src/mcp/protocol.js';
import { unsupportedVersionRefusal } from '../../src/mcp/version-refusal.js';
import { refusalOf } from '../support/refusals.js';

/**
 * Refusals of versions and of parsed requests, as the client receives them (issue 23 items 5
 * and 13): an unsupported version under 2026-07-28 rules gets UnsupportedProtocolVersionError
 * (-32022, `data: { supported, requested }`, MCP 2026-07-28 basic §Protocol Version), methods
 * 2026-07-28 removed get 404 / -32601, and every refusal of a parsed request answers its id
 * (JSON-RPC 2.0 §5), each request of a batch in an array (§6). A 2026-07-28 message anywhere in
 * a batch meets the checks of its version.
 */

const V = '2026-07-28';
const META_KEY = 'io.modelcontextprotocol/protocolVersion';
const meta = (version: string) => ({ [META_KEY]: version, 'io.modelcontextprotocol/clientCapabilities': {} });
const bytes = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));

/** What the client receives for a refusal: status and parsed JSON body. */
function rendered(refusal: Refusal, isBatch = false): { status: number; body: unknown } {
  const { status, body } = renderRefusal(refusal, { resourceMetadataUrl: 'https://gw.example/.well-known/oauth-protected-resource/mcp', routeScopes: [], isBatch });
  return { status, body: JSON.parse(body) as unknown };
}

describe('unsupportedVersionRefusal', () => {
  it('answers a body naming its version in _meta with UnsupportedProtocolVersionError (400, -32022, supported and requested) under the request id', () => {
    const body = bytes({ jsonrpc: '2.0', id: 'r-1', method: 'tools/list', params: { _meta: meta('2099-01-01') } });
    expect(rendered(unsupportedVersionRefusal('2099-01-01', body))).toEqual({
      status: 400,
      body: { jsonrpc: '2.0', id: 'r-1', error: { code: -32022, message: 'Unsupported protocol version: 2099-01-01', data: { supported: [V], requested: '2099-01-01' } } },
    });
  });

  it('answers a body without a _meta version with the 400 of the version header (-32600), under the request id', () => {
    const body = bytes({ jsonrpc: '2.0', id: 7, method: 'tools/list' });
    expect(rendered(unsupportedVersionRefusal('1999-01-01', body))).toEqual({
      status: 400,
      body: { jsonrpc: '2.0', id: 7, error: { code: -32600, message: 'Unsupported MCP-Protocol-Version: 1999-01-01' } },
    });
  });

  it('answers every request of a batch with its id, in an array, and no notification', () => {
    const body = bytes([
      { jsonrpc: '2.0', id: 1, method: 'tools/list', params: { _meta: meta('2099-01-01') } },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 'two', method: 'prompts/list' },
    ]);
    const { status, body: answer } = rendered(unsupportedVersionRefusal('2099-01-01', body));
    expect(status).toBe(400);
    expect((answer as { id: unknown; error: { code: number } }[]).map((element) => [element.id, element.error.code])).toEqual([
      [1, -32022],
      ['two', -32022],
    ]);
  });

  it('answers a batch of one request as a batch: an array of one', () => {
    const { body } = rendered(unsupportedVersionRefusal('2099-01-01', bytes([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }])));
    expect(body).toEqual([{ jsonrpc: '2.0', id: 1, error: { code: -32600, message: 'Unsupported MCP-Protocol-Version: 2099-01-01' } }]);
  });

  it('has no id to answer for a GET, a body that is not JSON, or requests without a usable id', () => {
    for (const body of [undefined, bytes('{"jsonrpc":'), bytes({ jsonrpc: '2.0', id: null, method: 'x' }), bytes({ jsonrpc: '2.0', id: 1.5, method: 'x' }), bytes({ jsonrpc: '2.0', method: 'notifications/x' })]) {
      expect(rendered(unsupportedVersionRefusal('2099-01-01', body)).body).toEqual({ jsonrpc: '2.0', error: { code: -32600, message: 'Unsupported MCP-Protocol-Version: 2099-01-01' } });
    }
  });

  it('bounds what it echoes of the requested version', () => {
    const requested = 'v'.repeat(1000);
    const refusal = unsupportedVersionRefusal(requested, bytes({ jsonrpc: '2.0', id: 1, method: 'x', params: { _meta: meta(requested) } }));
    expect(refusal.message).toBe(`Unsupported protocol version: ${'v'.repeat(40)}…`);
    expect(refusal.details.data).toEqual({ supported: [V], requested: 'v'.repeat(256) });
  });
});

describe('a _meta version the gateway does not know, under an older or no version header', () => {
  it('is refused with UnsupportedProtocolVersionError naming it, under every request id of the body', () => {
    const batch = parseMcpBody(bytes([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 2, method: 'tools/list', params: { _meta: meta('2099-01-01') } }]), '2025-03-26');
    const refusal = refusalOf(() => checkMirroredHeaders({}, '2025-03-26', batch));
    expect(rendered(refusal)).toEqual({
      status: 400,
      body: [1, 2].map((id) => ({ jsonrpc: '2.0', id, error: { code: -32022, message: 'Unsupported protocol version: 2099-01-01', data: { supported: [V], requested: '2099-01-01' } } })),
    });
  });

  it('is a HeaderMismatch (-32020) under a 2026-07-28 header, as any other _meta version is there', () => {
    const lone = parseMcpBody(bytes({ jsonrpc: '2.0', id: 'h', method: 'tools/list', params: { _meta: meta('2099-01-01') } }), V);
    const refusal = refusalOf(() => checkMirroredHeaders({ 'mcp-protocol-version': V, 'mcp-method': 'tools/list' }, V, lone));
    expect(rendered(refusal)).toMatchObject({ status: 400, body: { jsonrpc: '2.0', id: 'h', error: { code: -32020 } } });
  });
});

describe('a 2026-07-28 message anywhere in a batch (item 5)', () => {
  const plain = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/list' });
  const notification = { jsonrpc: '2.0', method: 'notifications/initialized' };
  const modern = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/list', params: { _meta: meta(V) } });

  it('is refused without the 2026-07-28 version header wherever it stands, whatever other _meta versions come first', () => {
    const older = { jsonrpc: '2.0', id: 9, method: 'tools/list', params: { _meta: meta('2025-06-18') } };
    const messageArb = fc.oneof(fc.nat({ max: 50 }).map(plain), fc.constant(notification), fc.constant(older));
    fc.assert(
      fc.property(fc.array(messageArb, { maxLength: 4 }), fc.nat(), fc.constantFrom<ProtocolVersion>('2024-11-05', '2025-03-26'), (others, at, version) => {
        const batch = [...others];
        batch.splice(at % (others.length + 1), 0, modern(100));
        const body = parseMcpBody(bytes(batch), version);
        expect(body.metaVersion).toBe(V);
        const refusal = refusalOf(() => checkMirroredHeaders(version === '2025-03-26' ? {} : { 'mcp-protocol-version': version }, version, body));
        expect(refusal.code).toBe('header_mismatch');
        // Every request of the batch is answered, the notifications are not.
        const ids = batch.flatMap((message) => ('id' in message ? [message.id] : []));
        expect(refusal.details.rpcIds).toEqual(ids);
        // Control: the same batch without the 2026-07-28 element passes the header checks.
        expect(() => checkMirroredHeaders({}, version, parseMcpBody(bytes(others.length > 0 ? others : [plain(1)]), version))).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });
});

describe('refusals of a parsed request carry its id', () => {
  const codeAndIds = (body: unknown, version: ProtocolVersion = '2025-06-18') => {
    const refusal = refusalOf(() => parseMcpBody(bytes(body), version));
    return { code: refusal.code, ids: refusal.details.rpcIds, batch: refusal.details.batch };
  };

  it('answers a duplicate key, a malformed tools/call or a malformed resource read under the request id', () => {
    expect(codeAndIds('{"jsonrpc":"2.0","id":"dup","method":"tools/call","params":{"name":"a","name":"b"}}')).toEqual({ code: 'invalid_message', ids: ['dup'], batch: undefined });
    expect(codeAndIds({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: {} })).toEqual({ code: 'invalid_message', ids: [3], batch: undefined });
    expect(codeAndIds({ jsonrpc: '2.0', id: 'r', method: 'resources/read', params: { uri: '' } })).toEqual({ code: 'invalid_message', ids: ['r'], batch: undefined });
    const rendered1 = rendered(refusalOf(() => parseMcpBody(bytes({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: {} }), '2025-06-18')));
    expect(rendered1).toEqual({ status: 400, body: { jsonrpc: '2.0', id: 3, error: { code: -32600, message: 'Invalid Request: tools/call needs params.name as a string' } } });
  });

  it('answers every request of a batch when one element is refused, in an array, skipping notifications and ids that are not ids', () => {
    const batch = [
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { jsonrpc: '2.0', id: 'bad', method: 'tools/call', params: { name: 42 } },
      { jsonrpc: '2.0', id: 2.5, method: 'tools/list' },
    ];
    const refusal = refusalOf(() => parseMcpBody(bytes(batch), '2025-03-26'));
    expect(refusal.details.rpcIds).toEqual([1, 'bad']);
    expect((rendered(refusal).body as { id: unknown }[]).map((element) => element.id)).toEqual([1, 'bad']);
    // The same for a duplicate key inside one element, and for a batch of one.
    expect(codeAndIds(`[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"a","\\u006eame":"b"}}]`, '2025-03-26')).toEqual({ code: 'invalid_message', ids: [1, 2], batch: true });
    expect(codeAndIds([{ jsonrpc: '2.0', id: 'only', method: 'tools/call' }], '2025-03-26')).toEqual({ code: 'invalid_message', ids: ['only'], batch: true });
  });

  it('has no id to answer for a body that is not JSON, a batch where batches do not exist, or a request without a usable id', () => {
    expect(codeAndIds('{"jsonrpc":"2.0","id":1,')).toEqual({ code: 'parse_error', ids: undefined, batch: undefined });
    expect(codeAndIds([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }], '2025-06-18')).toEqual({ code: 'batch_not_supported', ids: undefined, batch: undefined });
    expect(codeAndIds({ jsonrpc: '2.0', id: null, method: 'tools/list' })).toEqual({ code: 'invalid_message', ids: undefined, batch: undefined });
  });

  it('control: the same requests made legal parse, with their ids', () => {
    const body = parseMcpBody(bytes([{ jsonrpc: '2.0', id: 1, method: 'tools/list' }, { jsonrpc: '2.0', id: 'bad', method: 'tools/call', params: { name: 'a' } }]), '2025-03-26');
    expect(body.messages.map((message) => (message.kind === 'request' ? message.id : undefined))).toEqual([1, 'bad']);
  });
});

describe('methods 2026-07-28 removed', () => {
  it.each([...REMOVED_IN_STATELESS])('answers %s in 2026-07-28 with 404 / -32601 under its id, whatever its params', (method) => {
    for (const params of [{ uri: 'todo://list', _meta: meta(V) }, { _meta: meta(V) }, undefined]) {
      const refusal = refusalOf(() => parseMcpBody(bytes({ jsonrpc: '2.0', id: `id-${method}`, method, ...(params ? { params } : {}) }), V));
      expect(rendered(refusal)).toEqual({ status: 404, body: { jsonrpc: '2.0', id: `id-${method}`, error: { code: -32601, message: `Method not found: ${method}` } } });
    }
  });

  it('control: resources/subscribe and resources/unsubscribe parse as resource requests before 2026-07-28', () => {
    for (const method of ['resources/subscribe', 'resources/unsubscribe']) {
      const body = parseMcpBody(bytes({ jsonrpc: '2.0', id: 1, method, params: { uri: 'todo://list' } }), '2025-11-25');
      expect(body.messages[0]).toMatchObject({ kind: 'request', id: 1, method, policy: { kind: 'resource', uri: 'todo://list' } });
    }
  });
});
