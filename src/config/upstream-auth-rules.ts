/**
 * What every routes[].upstreamAuth mode is checked against (src/config/upstream-auth-section.ts,
 * src/config/user-credential-section.ts): the route's context, and which headers can carry a
 * credential.
 */

/** What the section needs to know of its route and of the rest of the config. */
export interface UpstreamAuthContext {
  readonly index: number;
  readonly routeName: string;
  readonly forwardHeaders: readonly string[];
  readonly identityHeaders: readonly string[];
  /** The issuers whose tokens this route accepts. */
  readonly trustingIssuers: readonly string[];
  readonly storeType: 'memory' | 'redis';
  /** The authorization-server facade, when configured: whether it keeps the IdP's tokens (tokenEncryptionKeyFile). */
  readonly facade: { readonly keepsTokens: boolean } | undefined;
}

export type ReadText = (path: (string | number)[], name: string) => Promise<{ file: string; text: string } | undefined>;

/**
 * Headers the static credential may not use: the ones the gateway forwards for MCP or sets
 * itself (its value would replace them, or theirs would be mistaken for it). proxy/headers.ts
 * lists the forwarded ones; config cannot import it (it is below proxy/), hence the copy.
 */
const RESERVED_HEADERS = new Set(['accept', 'last-event-id', 'user-agent', 'traceparent', 'tracestate', 'x-request-id', 'forwarded', 'x-real-ip']);

function reservedHeader(header: string): boolean {
  return RESERVED_HEADERS.has(header) || header.startsWith('mcp-') || header.startsWith('x-forwarded-');
}

/** Why `header` cannot carry a credential on this route, or undefined when it can. */
export function credentialHeaderProblem(header: string, context: Pick<UpstreamAuthContext, 'forwardHeaders' | 'identityHeaders'>): string | undefined {
  if (reservedHeader(header)) return `'${header}' is a header the gateway forwards for MCP or sets itself: the credential needs one of its own`;
  if (context.forwardHeaders.includes(header)) return `'${header}' is also in forwardHeaders: a client could send its own`;
  if (context.identityHeaders.includes(header)) return `'${header}' is already an identity header`;
  return undefined;
}

