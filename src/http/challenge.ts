/** RFC 9110 §5.6.4 quoted-string: backslash-escape `"` and `\`; drop what a header cannot carry. */
export function quoted(value: string): string {
  return `"${value.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&')}"`;
}

export interface BearerChallenge {
  readonly error?: string;
  readonly errorDescription?: string;
  readonly scope?: readonly string[];
  readonly resourceMetadata: string;
}

/**
 * `WWW-Authenticate: Bearer …` per RFC 6750 §3 with RFC 9728 §5.1 `resource_metadata`, which
 * MCP clients use to find the authorization server (MCP authorization 2025-11-25 §Protected
 * Resource Metadata Discovery Requirements; 2025-06-18 §Authorization Server Location).
 */
export function bearerChallenge(challenge: BearerChallenge): string {
  const params: string[] = [];
  if (challenge.error) params.push(`error=${quoted(challenge.error)}`);
  if (challenge.errorDescription) params.push(`error_description=${quoted(challenge.errorDescription)}`);
  if (challenge.scope && challenge.scope.length > 0) params.push(`scope=${quoted(challenge.scope.join(' '))}`);
  params.push(`resource_metadata=${quoted(challenge.resourceMetadata)}`);
  return `Bearer ${params.join(', ')}`;
}

export interface DpopChallenge {
  readonly error?: string;
  readonly errorDescription?: string;
  readonly algs: readonly string[];
}

/** `DPoP …` per RFC 9449 §7.1: the proof algorithms accepted, and the error when there is one. */
export function dpopChallenge(challenge: DpopChallenge): string {
  const params: string[] = [];
  if (challenge.error) params.push(`error=${quoted(challenge.error)}`);
  if (challenge.errorDescription) params.push(`error_description=${quoted(challenge.errorDescription)}`);
  params.push(`algs=${quoted(challenge.algs.join(' '))}`);
  return `DPoP ${params.join(', ')}`;
}
