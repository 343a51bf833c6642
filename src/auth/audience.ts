/**
 * Whether `aud` names the expected audience. http(s) URLs are compared in canonical form (scheme
 * and host lower-case, default port dropped): MCP authorization §Canonical Server URI says
 * implementations SHOULD accept uppercase scheme and host; the path is compared exactly. Any
 * other audience (an Entra application GUID, an `api://` identifier) is compared exactly.
 */
export function audienceIncludes(aud: unknown, expected: string): boolean {
  const wanted = comparable(expected);
  const values = Array.isArray(aud) ? aud : [aud];
  return values.some((value) => typeof value === 'string' && comparable(value) === wanted);
}

function comparable(audience: string): string {
  return /^https?:\/\//i.test(audience) ? (canonicalUri(audience) ?? audience) : audience;
}

export function canonicalUri(uri: string): string | undefined {
  try {
    const url = new URL(uri);
    return `${url.protocol}//${url.host}${url.pathname}${url.search}`;
  } catch {
    return undefined;
  }
}
