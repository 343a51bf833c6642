import type { IncomingHttpHeaders } from 'node:http';
import { Refusal } from '../errors.js';

/**
 * A POST body must be what the gateway checks: JSON in UTF-8, not compressed. Another charset
 * (`charset=utf-7`) or an encoding would let the upstream read different bytes than the policy
 * judged, so both are refused (Streamable HTTP: POST bodies are JSON-RPC in JSON).
 */
export function checkJsonContentType(headers: IncomingHttpHeaders): void {
  const contentType = headers['content-type'];
  // The usual header, exactly: nothing to split.
  if (contentType === 'application/json' && headers['content-encoding'] === undefined) return;
  const [mediaType, ...parameters] = contentTypeParts(contentType);
  if (mediaType !== 'application/json') {
    throw new Refusal('unsupported_media_type', 'Content-Type must be application/json');
  }
  for (const parameter of parameters) {
    const [name, value] = parameter.split('=').map((p) => p.trim().replace(/^"(.*)"$/, '$1'));
    if (name === 'charset' && value !== 'utf-8' && value !== 'utf8') {
      throw new Refusal('unsupported_media_type', 'Content-Type charset must be utf-8');
    }
  }
  const encoding = headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new Refusal('unsupported_media_type', 'Content-Encoding is not supported');
  }
}

/** The media type alone, lower-case: `text/event-stream; charset=utf-8` → `text/event-stream`. */
export function mediaTypeOf(contentType: string | undefined): string {
  if (contentType === undefined) return '';
  const semicolon = contentType.indexOf(';');
  return (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase();
}

function contentTypeParts(contentType: string | undefined): string[] {
  return (contentType ?? '').split(';').map((part) => part.trim().toLowerCase());
}

/**
 * Whether a content type names no charset or UTF-8: JSON is UTF-8 (RFC 8259 §8.1) and so is an
 * event stream (WHATWG HTML §9.2.5), but a client may honour another charset parameter and read
 * text the filter never saw.
 */
export function isUtf8Charset(contentType: string | undefined): boolean {
  // No parameter, no charset: the usual answer's header needs no splitting.
  if (contentType === undefined || !contentType.includes(';')) return true;
  for (const parameter of contentTypeParts(contentType).slice(1)) {
    const equals = parameter.indexOf('=');
    const name = (equals === -1 ? parameter : parameter.slice(0, equals)).trim();
    if (name !== 'charset') continue;
    const value = parameter.slice(equals + 1).trim().replace(/^"(.*)"$/, '$1');
    if (value !== 'utf-8' && value !== 'utf8') return false;
  }
  return true;
}
