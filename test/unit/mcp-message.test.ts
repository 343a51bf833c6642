import { describe, expect, it } from 'vitest';
import { refusalOf } from '../support/refusals.js';
import { MAX_TOOL_NAME_LENGTH, parseMcpBody } from '../../src/mcp/message.js';
import {
  allowsBatches,
  ASSUMED_PROTOCOL_VERSION,
  MAX_SESSION_ID_LENGTH,
  parseProtocolVersionHeader,
  parseSessionIdHeader,
  type ProtocolVersion,
} from '../../src/mcp/protocol.js';
import { findDuplicateKey } from '../../src/mcp/strict-json.js';

const BATCHLESS: ProtocolVersion[] = ['2025-06-18', '2025-11-25'];

function bytes(value: unknown): Buffer {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value));
}

function toolsCall(id: number | string, name: unknown): Record<string, unknown> {
  return { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } };
}


const parse = (body: unknown, version: ProtocolVersion = '2025-06-18') => parseMcpBody(bytes(body), version);
const codeOf = (body: unknown, version: ProtocolVersion = '2025-06-18') => refusalOf(() => parse(body, version)).code;

describe('parseMcpBody: JSON', () => {
  it('refuses malformed JSON with parse_error', () => {
    expect(codeOf('{"jsonrpc":"2.0",')).toBe('parse_error');
    expect(codeOf('')).toBe('parse_error');
    expect(codeOf("{'jsonrpc':'2.0'}")).toBe('parse_error');
  });

  it('refuses a body that is not valid UTF-8 with parse_error', () => {
    // The tool name the policy would see ("safe\uFFFD") is not the bytes the upstream receives.
    const invalidUtf8 = Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe'), Buffer.from([0xff]), Buffer.from('"}}')]);
    expect(refusalOf(() => parseMcpBody(invalidUtf8, '2025-06-18')).code).toBe('parse_error');
  });

  it('refuses a duplicate key at the top level with invalid_message', () => {
    expect(codeOf('{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call"}')).toBe('invalid_message');
  });

  it('refuses a duplicate key nested in params with invalid_message', () => {
    expect(codeOf('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","name":"secret"}}')).toBe('invalid_message');
  });

  it('refuses a duplicate key spelled with an escape with invalid_message', () => {
    expect(codeOf('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"safe","\\u006eame":"secret"}}')).toBe(
      'invalid_message',
    );
  });
});

describe('findDuplicateKey', () => {
  it('finds a duplicate at the top level', () => {
    expect(findDuplicateKey('{"a":1,"b":2,"a":3}')).toBe('a');
  });

  it('finds a duplicate deep inside arrays and objects', () => {
    expect(findDuplicateKey('{"x":[1,{"y":[{"k":1,"k":2}]}]}')).toBe('k');
  });

  it('finds a duplicate whose spellings differ only by escapes', () => {
    expect(findDuplicateKey('{"name":1,"\\u006eame":2}')).toBe('name');
    expect(findDuplicateKey('{"a\\/b":1,"a/b":2}')).toBe('a/b');
  });

  it('allows the same key in sibling objects', () => {
    expect(findDuplicateKey('{"a":{"k":1},"b":{"k":2},"k":3}')).toBeUndefined();
  });

  it('allows the same key in objects that are array elements', () => {
    expect(findDuplicateKey('[{"id":1,"k":1},{"id":2,"k":2}]')).toBeUndefined();
    expect(findDuplicateKey('{"list":[{"k":1},{"k":2}],"k":0}')).toBeUndefined();
  });

  it('is not confused by strings that contain braces, quotes and commas', () => {
    expect(findDuplicateKey('{"a":"{\\"a\\":1,","b":"}],{","c":"\\\\"}')).toBeUndefined();
    expect(findDuplicateKey('{"a":"x,\\"a\\":","a":1}')).toBe('a');
  });

  it('is not confused by keys that contain escaped quotes', () => {
    expect(findDuplicateKey('{"a\\"":1,"a":2}')).toBeUndefined();
    expect(findDuplicateKey('{"a\\"":1,"a\\u0022":2}')).toBe('a"');
  });

  it('does not treat string values in arrays as keys', () => {
    expect(findDuplicateKey('{"a":["a","a"],"b":"a"}')).toBeUndefined();
  });

  it('returns undefined for scalars and empty containers', () => {
    expect(findDuplicateKey('1')).toBeUndefined();
    expect(findDuplicateKey('"a"')).toBeUndefined();
    expect(findDuplicateKey('{}')).toBeUndefined();
    expect(findDuplicateKey('[{},[],{}]')).toBeUndefined();
  });
});

describe('parseMcpBody: batches', () => {
  const batch = [toolsCall(1, 'list_todos'), { jsonrpc: '2.0', method: 'notifications/initialized' }, { jsonrpc: '2.0', id: 9, result: {} }];

  it.each(BATCHLESS)('refuses a batch with batch_not_supported in %s', (version) => {
    expect(codeOf(batch, version)).toBe('batch_not_supported');
  });

  it('accepts a batch in 2025-03-26, typing each element', () => {
    const body = parse(batch, '2025-03-26');
    expect(body.isBatch).toBe(true);
    expect(body.messages).toEqual([
      { kind: 'request', id: 1, method: 'tools/call', policy: { kind: 'tool-call', tool: 'list_todos', arguments: {} } },
      { kind: 'notification', method: 'notifications/initialized', policy: { kind: 'other', method: 'notifications/initialized' } },
      { kind: 'response', id: 9 },
    ]);
  });

  it('refuses an empty batch with invalid_message', () => {
    expect(codeOf([], '2025-03-26')).toBe('invalid_message');
  });

  it('refuses a batch when one element is invalid', () => {
    expect(codeOf([toolsCall(1, 'a'), { jsonrpc: '2.0', id: null, method: 'x' }], '2025-03-26')).toBe('invalid_message');
  });

  it('refuses a duplicate key inside one batch element', () => {
    expect(codeOf('[{"jsonrpc":"2.0","id":1,"method":"a","method":"b"}]', '2025-03-26')).toBe('invalid_message');
  });

  it('allows the same keys in different batch elements', () => {
    expect(parse([toolsCall(1, 'a'), toolsCall(2, 'b')], '2025-03-26').messages).toHaveLength(2);
  });

  it('marks a single message as not a batch', () => {
    expect(parse(toolsCall(1, 'a')).isBatch).toBe(false);
  });
});

describe('parseMcpBody: message shapes', () => {
  it('classifies a message with method and id as a request', () => {
    expect(parse({ jsonrpc: '2.0', id: 'abc', method: 'tools/list' }).messages).toEqual([
      { kind: 'request', id: 'abc', method: 'tools/list', policy: { kind: 'other', method: 'tools/list' } },
    ]);
  });

  it('classifies a message with method and no id as a notification', () => {
    expect(parse({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 1 } }).messages[0]).toMatchObject({
      kind: 'notification',
      method: 'notifications/cancelled',
    });
  });

  it('classifies a message with result or error and no method as a response', () => {
    expect(parse({ jsonrpc: '2.0', id: 4, result: { roots: [] } }).messages[0]).toEqual({ kind: 'response', id: 4 });
    expect(parse({ jsonrpc: '2.0', id: null, error: { code: -1, message: 'x' } }).messages[0]).toEqual({ kind: 'response', id: null });
  });

  it('types a tools/call with its tool name', () => {
    expect(parse(toolsCall(3, 'add_todo')).messages[0]).toMatchObject({ kind: 'request', policy: { kind: 'tool-call', tool: 'add_todo' } });
  });

  it('refuses a request whose id is null', () => {
    expect(codeOf({ jsonrpc: '2.0', id: null, method: 'tools/list' })).toBe('invalid_message');
  });

  it('refuses a request whose id is fractional, boolean or an object', () => {
    expect(codeOf({ jsonrpc: '2.0', id: 1.5, method: 'tools/list' })).toBe('invalid_message');
    expect(codeOf({ jsonrpc: '2.0', id: true, method: 'tools/list' })).toBe('invalid_message');
    expect(codeOf({ jsonrpc: '2.0', id: {}, method: 'tools/list' })).toBe('invalid_message');
  });

  it('refuses a tools/call without a string params.name', () => {
    expect(codeOf({ jsonrpc: '2.0', id: 1, method: 'tools/call' })).toBe('invalid_message');
    expect(codeOf({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: {} })).toBe('invalid_message');
    expect(codeOf(toolsCall(1, 42))).toBe('invalid_message');
    expect(codeOf(toolsCall(1, ['a']))).toBe('invalid_message');
    expect(codeOf({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: ['name'] })).toBe('invalid_message');
  });

  it('refuses a tools/call notification without a name too', () => {
    expect(codeOf({ jsonrpc: '2.0', method: 'tools/call', params: {} })).toBe('invalid_message');
  });

  it('refuses a message without jsonrpc 2.0', () => {
    expect(codeOf({ id: 1, method: 'tools/list' })).toBe('invalid_message');
    expect(codeOf({ jsonrpc: '1.0', id: 1, method: 'tools/list' })).toBe('invalid_message');
  });

  it('refuses a non-string method', () => {
    expect(codeOf({ jsonrpc: '2.0', id: 1, method: 5 })).toBe('invalid_message');
  });

  it('refuses a message that is neither request, notification nor response', () => {
    expect(codeOf({ jsonrpc: '2.0', id: 1 })).toBe('invalid_message');
    expect(codeOf({ jsonrpc: '2.0', id: { x: 1 }, result: {} })).toBe('invalid_message');
    expect(codeOf('"just a string"')).toBe('invalid_message');
    expect(codeOf('null')).toBe('invalid_message');
  });
});

describe('parseProtocolVersionHeader', () => {
  it('assumes 2025-03-26 without the header', () => {
    expect(parseProtocolVersionHeader(undefined)).toBe('2025-03-26');
    expect(ASSUMED_PROTOCOL_VERSION).toBe('2025-03-26');
  });

  it.each(['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25'] as const)('accepts %s', (version) => {
    expect(parseProtocolVersionHeader(version)).toBe(version);
  });

  it('refuses an unknown version with unsupported_protocol_version', () => {
    expect(refusalOf(() => parseProtocolVersionHeader('2099-01-01')).code).toBe('unsupported_protocol_version');
    expect(refusalOf(() => parseProtocolVersionHeader('')).code).toBe('unsupported_protocol_version');
    expect(refusalOf(() => parseProtocolVersionHeader('x'.repeat(1000))).code).toBe('unsupported_protocol_version');
  });

  it('allows batches only before 2025-06-18', () => {
    expect(allowsBatches('2024-11-05')).toBe(true);
    expect(allowsBatches('2025-03-26')).toBe(true);
    expect(allowsBatches('2025-06-18')).toBe(false);
    expect(allowsBatches('2025-11-25')).toBe(false);
  });
});

describe('parseSessionIdHeader', () => {
  const invalid = (header: string) => refusalOf(() => parseSessionIdHeader(header)).code;

  it('returns undefined without the header', () => {
    expect(parseSessionIdHeader(undefined)).toBeUndefined();
  });

  it('accepts every visible ASCII character', () => {
    let visible = '';
    for (let c = 0x21; c <= 0x7e; c++) visible += String.fromCharCode(c);
    expect(parseSessionIdHeader(visible)).toBe(visible);
  });

  it('accepts 256 visible characters', () => {
    const id = 'a'.repeat(MAX_SESSION_ID_LENGTH);
    expect(MAX_SESSION_ID_LENGTH).toBe(256);
    expect(parseSessionIdHeader(id)).toBe(id);
  });

  it('refuses 257 characters', () => {
    expect(invalid('a'.repeat(257))).toBe('invalid_session_id');
  });

  it('refuses an empty id', () => {
    expect(invalid('')).toBe('invalid_session_id');
  });

  it('refuses a space (0x20)', () => {
    expect(invalid('abc def')).toBe('invalid_session_id');
    expect(invalid(' abc')).toBe('invalid_session_id');
  });

  it('refuses DEL (0x7f)', () => {
    expect(invalid('abc\x7f')).toBe('invalid_session_id');
  });

  it('refuses non-ASCII and control characters', () => {
    expect(invalid('abcé')).toBe('invalid_session_id');
    expect(invalid('abc\n')).toBe('invalid_session_id');
    expect(invalid('abc\t')).toBe('invalid_session_id');
  });
});

describe('method and tool name hardening', () => {
  const body = (message: unknown) => Buffer.from(JSON.stringify(message));

  it.each(['Tools/List', 'TOOLS/LIST', 'Initialize', 'logging/setlevel'])('refuses %s, a case variant of a standard method', (method) => {
    expect(refusalOf(() => parseMcpBody(body({ jsonrpc: '2.0', id: 1, method }), '2025-06-18')).code).toBe('invalid_message');
  });

  it('keeps an extension method whose name is not a variant of a standard one', () => {
    const parsed = parseMcpBody(body({ jsonrpc: '2.0', id: 1, method: 'acme/Custom' }), '2025-06-18');
    expect(parsed.messages[0]).toMatchObject({ kind: 'request', method: 'acme/Custom' });
  });

  it('refuses an empty tool name and one over the length cap', () => {
    for (const name of ['', 'x'.repeat(MAX_TOOL_NAME_LENGTH + 1)]) {
      const message = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name } };
      expect(refusalOf(() => parseMcpBody(body(message), '2025-06-18')).code).toBe('invalid_message');
    }
    const atCap = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x'.repeat(MAX_TOOL_NAME_LENGTH) } };
    expect(parseMcpBody(body(atCap), '2025-06-18').messages).toHaveLength(1);
  });
});
