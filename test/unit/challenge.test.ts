import { describe, expect, it } from 'vitest';
import { JSONRPC_INVALID_PARAMS, JSONRPC_UNAUTHORIZED, Refusal, type RefusalDetails } from '../../src/errors.js';
import { bearerChallenge, quoted } from '../../src/http/challenge.js';
import { renderRefusal, type RefusalContext } from '../../src/http/refusal.js';

const RESOURCE_METADATA = 'https://gw.example.test/.well-known/oauth-protected-resource/mcp';

function context(overrides: Partial<RefusalContext> = {}): RefusalContext {
  return { resourceMetadataUrl: RESOURCE_METADATA, routeScopes: ['todo:read'], ...overrides };
}

function refusal(code: Refusal['code'], message = 'refused', details: RefusalDetails = {}): Refusal {
  return new Refusal(code, message, details);
}

/** Parses `Bearer k="v", k2="v2"` (quoted-string values with backslash escapes) into a map. */
function parseChallenge(header: string): Record<string, string> {
  expect(header.startsWith('Bearer ')).toBe(true);
  const params: Record<string, string> = {};
  const rest = header.slice('Bearer '.length);
  const param = /\s*([a-z_]+)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/gy;
  let match: RegExpExecArray | null;
  let consumed = 0;
  while ((match = param.exec(rest)) !== null) {
    params[match[1]!] = match[2]!.replace(/\\(.)/g, '$1');
    consumed = param.lastIndex;
  }
  expect(consumed).toBe(rest.length);
  return params;
}

describe('quoted', () => {
  it('wraps a plain value in double quotes', () => {
    expect(quoted('todo:read todo:write')).toBe('"todo:read todo:write"');
  });

  it('escapes double quotes and backslashes', () => {
    expect(quoted('say "hi"')).toBe('"say \\"hi\\""');
    expect(quoted('a\\b')).toBe('"a\\\\b"');
    expect(quoted('\\"')).toBe('"\\\\\\""');
  });

  it('drops characters a header cannot carry', () => {
    expect(quoted('line\r\nbreak\ttab é\u0000')).toBe('"linebreaktab "');
  });
});

describe('bearerChallenge', () => {
  it('lists error, error_description, scope and resource_metadata in order', () => {
    expect(
      bearerChallenge({ error: 'invalid_token', errorDescription: 'expired', scope: ['a', 'b'], resourceMetadata: RESOURCE_METADATA }),
    ).toBe(`Bearer error="invalid_token", error_description="expired", scope="a b", resource_metadata="${RESOURCE_METADATA}"`);
  });

  it('omits an empty scope list and absent error', () => {
    expect(bearerChallenge({ scope: [], resourceMetadata: RESOURCE_METADATA })).toBe(`Bearer resource_metadata="${RESOURCE_METADATA}"`);
  });

  it('round-trips an error_description containing quotes and backslashes', () => {
    const description = 'bad "token" \\ here';
    const header = bearerChallenge({ error: 'invalid_token', errorDescription: description, resourceMetadata: RESOURCE_METADATA });
    expect(parseChallenge(header).error_description).toBe(description);
  });
});

describe('renderRefusal', () => {
  it('renders missing_token as 401 with no error param, the route scopes and resource_metadata', () => {
    const rendered = renderRefusal(refusal('missing_token', 'Authorization needed'), context({ routeScopes: ['todo:read', 'todo:list'] }));
    expect(rendered.status).toBe(401);
    const challenge = parseChallenge(rendered.headers['www-authenticate']!);
    expect(challenge).toEqual({ scope: 'todo:read todo:list', resource_metadata: RESOURCE_METADATA });
    expect(JSON.parse(rendered.body)).toEqual({ jsonrpc: '2.0', error: { code: JSONRPC_UNAUTHORIZED, message: 'Authorization needed' } });
    expect(rendered.headers['content-type']).toBe('application/json');
    expect(rendered.headers['cache-control']).toBe('no-store');
  });

  it('renders missing_token without a scope param when the route needs none', () => {
    const rendered = renderRefusal(refusal('missing_token'), context({ routeScopes: [] }));
    expect(parseChallenge(rendered.headers['www-authenticate']!)).toEqual({ resource_metadata: RESOURCE_METADATA });
  });

  it('renders invalid_token as 401 with error and error_description', () => {
    const rendered = renderRefusal(refusal('invalid_token', 'The access token expired'), context());
    expect(rendered.status).toBe(401);
    expect(parseChallenge(rendered.headers['www-authenticate']!)).toEqual({
      error: 'invalid_token',
      error_description: 'The access token expired',
      scope: 'todo:read',
      resource_metadata: RESOURCE_METADATA,
    });
  });

  it('renders insufficient_scope as 403 with the scope from the details', () => {
    const rendered = renderRefusal(
      refusal('insufficient_scope', 'Additional scopes required: todo:write', { scope: ['todo:read', 'todo:write'], rpcIds: [3] }),
      context(),
    );
    expect(rendered.status).toBe(403);
    const challenge = parseChallenge(rendered.headers['www-authenticate']!);
    expect(challenge.error).toBe('insufficient_scope');
    expect(challenge.scope).toBe('todo:read todo:write');
    expect(challenge.resource_metadata).toBe(RESOURCE_METADATA);
    expect(JSON.parse(rendered.body)).toMatchObject({ id: 3, error: { code: JSONRPC_UNAUTHORIZED } });
  });

  it('renders tool_denied as 200 with a JSON-RPC -32602 error for the request id and no challenge', () => {
    const rendered = renderRefusal(refusal('tool_denied', 'Unknown tool: secret_tool', { rpcIds: ['req-7'] }), context());
    expect(rendered.status).toBe(200);
    expect(rendered.headers['www-authenticate']).toBeUndefined();
    expect(JSON.parse(rendered.body)).toEqual({
      jsonrpc: '2.0',
      id: 'req-7',
      error: { code: JSONRPC_INVALID_PARAMS, message: 'Unknown tool: secret_tool' },
    });
    expect(JSONRPC_INVALID_PARAMS).toBe(-32602);
  });

  it('renders a batch refusal as an array answering every request id', () => {
    const rendered = renderRefusal(refusal('tool_denied', 'Unknown tool: secret_tool', { rpcIds: [1, 'two', 3] }), context({ isBatch: true }));
    const body = JSON.parse(rendered.body) as { id: unknown; error: { code: number } }[];
    expect(Array.isArray(body)).toBe(true);
    expect(body.map((m) => m.id)).toEqual([1, 'two', 3]);
    expect(body.every((m) => m.error.code === -32602)).toBe(true);
  });

  it('renders a batch refusal without request ids as a one-element array whose error has no id', () => {
    const rendered = renderRefusal(refusal('parse_error', 'Parse error'), context({ isBatch: true }));
    expect(JSON.parse(rendered.body)).toEqual([{ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error' } }]);
  });

  it('answers a denied body without requests with an HTTP error, not 200', () => {
    const rendered = renderRefusal(refusal('notification_denied', 'Unknown tool: secret_tool'), context());
    expect(rendered.status).toBe(403);
    expect(JSON.parse(rendered.body)).toEqual({ jsonrpc: '2.0', error: { code: -32602, message: 'Unknown tool: secret_tool' } });
  });

  it('answers the first id only for a non-batch body', () => {
    const rendered = renderRefusal(refusal('tool_denied', 'Unknown tool: x', { rpcIds: [5] }), context({ isBatch: false }));
    expect(JSON.parse(rendered.body)).toMatchObject({ id: 5 });
  });

  it('sets retry-after from the details', () => {
    const rendered = renderRefusal(refusal('issuer_unavailable', 'down', { retryAfterSeconds: 5 }), context());
    expect(rendered.status).toBe(503);
    expect(rendered.headers['retry-after']).toBe('5');
    expect(rendered.headers['www-authenticate']).toBeUndefined();
  });

  it('sets retry-after even when it is 0', () => {
    expect(renderRefusal(refusal('store_unavailable', 'x', { retryAfterSeconds: 0 }), context()).headers['retry-after']).toBe('0');
  });

  it('sets allow from the details', () => {
    const rendered = renderRefusal(refusal('method_not_allowed', 'no', { allow: ['GET', 'POST', 'DELETE'] }), context());
    expect(rendered.status).toBe(405);
    expect(rendered.headers.allow).toBe('GET, POST, DELETE');
  });

  it('sends neither retry-after nor allow when the details have none', () => {
    const rendered = renderRefusal(refusal('invalid_message', 'bad'), context());
    expect(rendered.status).toBe(400);
    expect(rendered.headers['retry-after']).toBeUndefined();
    expect(rendered.headers.allow).toBeUndefined();
  });

  it('keeps a challenge parseable when the description holds quotes', () => {
    const rendered = renderRefusal(refusal('invalid_token', "The access token claim 'x\"y' is invalid"), context());
    expect(parseChallenge(rendered.headers['www-authenticate']!).error_description).toBe("The access token claim 'x\"y' is invalid");
  });
});
