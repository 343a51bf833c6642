import { OAuthError } from './errors.js';

/** Token, revocation and consent forms are a few hundred bytes; registrations a few KiB. */
const MAX_FORM_BYTES = 16 * 1024;

/** A request body, read whole up to `maxBytes` (more is refused without reading it all). */
export async function readBody(request: Request, maxBytes = MAX_FORM_BYTES): Promise<string> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new OAuthError('invalid_request', `the request body is larger than ${maxBytes} bytes`);
  if (!request.body) return '';
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw new OAuthError('invalid_request', `the request body is larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * An application/x-www-form-urlencoded body (RFC 6749 §3.2: the token endpoint takes nothing
 * else), as single values: a parameter given twice is refused (RFC 6749 §3.1, §3.2).
 */
export async function readForm(request: Request): Promise<Map<string, string>> {
  return singleValues(await readFormParams(request));
}

/** The form as sent, for a parameter that may come more than once (RFC 8707 `resource`). */
export async function readFormParams(request: Request): Promise<URLSearchParams> {
  const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new OAuthError('invalid_request', 'the body must be application/x-www-form-urlencoded');
  return new URLSearchParams(await readBody(request));
}

/** Parameters as single values; one sent twice is invalid_request (RFC 6749 §3.1). Empty values count as absent. */
export function singleValues(params: URLSearchParams): Map<string, string> {
  const values = new Map<string, string>();
  for (const [key, value] of params) {
    if (values.has(key)) throw new OAuthError('invalid_request', `the parameter '${key.slice(0, 40)}' is given more than once`);
    values.set(key, value);
  }
  for (const [key, value] of values) if (value === '') values.delete(key);
  return values;
}
