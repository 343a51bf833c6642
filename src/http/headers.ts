import type { IncomingHttpHeaders } from 'node:http';

/**
 * One header as a string. Node joins repeated headers into one comma-separated value (only
 * set-cookie stays an array), so a repeated Mcp-Session-Id arrives as "a, b" and is refused.
 */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}
