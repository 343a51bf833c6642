/**
 * Whether `aud` names the resource. Compared in canonical form (scheme and host lower-case,
 * default port dropped): MCP authorization §Canonical Server URI says implementations SHOULD
 * accept uppercase scheme and host; the path is compared exactly.
 */
export function audienceIncludes(aud: unknown, resource: string): boolean {
  const expected = canonicalUri(resource);
  if (expected === undefined) return false;
  const values = Array.isArray(aud) ? aud : [aud];
  return values.some((value) => typeof value === 'string' && canonicalUri(value) === expected);
}

export function canonicalUri(uri: string): string | undefined {
  try {
    const url = new URL(uri);
    return `${url.protocol}//${url.host}${url.pathname}${url.search}`;
  } catch {
    return undefined;
  }
}
