import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import { checkJsonContentType } from '../../src/http/content-type.js';
import { FORWARDED_REQUEST_HEADERS, clientResponseHeaders, upstreamHeaderLines } from '../../src/proxy/headers.js';
import { refusalOf } from '../support/refusals.js';

describe('POST content type', () => {
  it.each(['application/json', 'application/json; charset=utf-8', 'Application/JSON;charset="UTF-8"', 'application/json; charset=utf8'])(
    'accepts %s',
    (contentType) => {
      expect(() => checkJsonContentType({ 'content-type': contentType })).not.toThrow();
    },
  );

  it.each([undefined, 'text/plain', 'application/json; charset=utf-7', 'application/json; charset=utf-16le', 'application/json-seq'])(
    'refuses %s with unsupported_media_type, so the upstream can never decode other bytes than were judged',
    (contentType) => {
      expect(refusalOf(() => checkJsonContentType(contentType === undefined ? {} : { 'content-type': contentType })).code).toBe(
        'unsupported_media_type',
      );
    },
  );

  it('refuses a compressed body', () => {
    expect(refusalOf(() => checkJsonContentType({ 'content-type': 'application/json', 'content-encoding': 'gzip' })).code).toBe(
      'unsupported_media_type',
    );
    expect(() => checkJsonContentType({ 'content-type': 'application/json', 'content-encoding': 'identity' })).not.toThrow();
  });
});

describe('headers sent upstream', () => {
  const allowed = new Set(FORWARDED_REQUEST_HEADERS);

  /** The head's pairs as an object; a name sent twice fails the test. */
  function sentUpstream(
    incoming: IncomingHttpHeaders,
    allowedNames: ReadonlySet<string>,
    body: Buffer | undefined,
    gatewayHeaders: Record<string, string> = {},
  ): Record<string, string> {
    const lines = upstreamHeaderLines(incoming, allowedNames, body, gatewayHeaders, 'upstream.internal:8080');
    const headers: Record<string, string> = {};
    for (let i = 0; i < lines.length; i += 2) {
      expect(headers, `${lines[i]} sent twice`).not.toHaveProperty([lines[i]!]);
      headers[lines[i]!] = lines[i + 1]!;
    }
    return headers;
  }

  it('passes only the MCP headers and trace context, and never credentials or look-alikes', () => {
    const headers = sentUpstream(
      {
        accept: 'application/json, text/event-stream',
        'mcp-session-id': 's1',
        'mcp-protocol-version': '2025-06-18',
        traceparent: '00-abc-def-01',
        authorization: 'Bearer secret',
        cookie: 'sid=1',
        'mcp_session_id': 'victim',
        'x-forwarded-user': 'admin',
        expect: '100-continue',
        connection: 'keep-alive, x-hop',
        'x-hop': '1',
        'transfer-encoding': 'chunked',
        host: 'gateway.example',
      },
      allowed,
      undefined,
    );
    expect(headers).toEqual({
      accept: 'application/json, text/event-stream',
      'mcp-session-id': 's1',
      'mcp-protocol-version': '2025-06-18',
      traceparent: '00-abc-def-01',
      host: 'upstream.internal:8080',
    });
  });

  it('states the checked body exactly: application/json and its real length', () => {
    const body = Buffer.from('{"a":"é"}');
    const headers = sentUpstream({ 'content-type': 'application/json; charset=utf-7', 'content-length': '3' }, allowed, body);
    expect(headers['content-type']).toBe('application/json');
    expect(headers['content-length']).toBe(String(body.length));
  });

  it('passes a route-configured extra header', () => {
    const headers = sentUpstream({ 'x-tenant': 'acme' }, new Set([...allowed, 'x-tenant']), undefined);
    expect(headers['x-tenant']).toBe('acme');
  });

  it("sends the gateway's own headers over any client copy, and each header once", () => {
    const headers = sentUpstream(
      { 'x-request-id': 'forged', 'x-user': 'admin', 'mcp-param-region': 'eu', 'mcp-param-x-user': 'p', 'mcp-param-tenant': 'forged' },
      new Set([...allowed, 'x-request-id', 'x-user', 'mcp-param-region']),
      undefined,
      { 'x-request-id': 'req-1', 'x-user': 'alice', 'mcp-param-tenant': 'acme' },
    );
    expect(headers).toEqual({
      'x-request-id': 'req-1',
      'x-user': 'alice',
      'mcp-param-tenant': 'acme',
      'mcp-param-region': 'eu',
      'mcp-param-x-user': 'p',
      host: 'upstream.internal:8080',
    });
  });

  it('sends nothing for a configured name that only an object prototype has', () => {
    const incoming: IncomingHttpHeaders = { accept: 'application/json' };
    const headers = sentUpstream(incoming, new Set([...allowed, 'constructor', '__proto__', 'tostring', 'hasownproperty']), undefined);
    expect(headers).toEqual({ accept: 'application/json', host: 'upstream.internal:8080' });
  });

  it('drops hop-by-hop headers from the answer, including those its Connection names', () => {
    const headers = clientResponseHeaders({
      'content-type': 'text/event-stream',
      'mcp-session-id': 's1',
      connection: 'keep-alive, x-private',
      'x-private': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
    });
    expect(headers).toEqual({ 'content-type': 'text/event-stream', 'mcp-session-id': 's1' });
  });
});
