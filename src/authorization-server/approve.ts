import { redirectAnswer } from './answers.js';
import type { PendingAuthorization, PendingUser } from './pending.js';
import type { AuthorizationServer } from './service.js';

/**
 * The user approved (now, or before for these scopes): the approval is remembered for this user
 * and client only, the IdP's tokens are kept (sealed) for the user, and the client gets a code
 * (RFC 6749 §4.1.2) with `state` and `iss` (RFC 9207). The pending authorization is finished, so
 * nothing about it can be replayed.
 */
export async function approve(as: AuthorizationServer, id: string, pending: PendingAuthorization, user: PendingUser): Promise<Response> {
  const previous = (await as.consents.approved(user.subject, pending.clientId)) ?? [];
  await as.consents.remember(user.subject, pending.clientId, [...new Set([...previous, ...user.scopes])]);
  if (as.vault && user.idpTokens !== undefined) await as.vault.keep(user.subject, user.idpTokens, as.config.tokens.refreshTokenTtlMs);
  const code = await as.codes.issue({
    clientId: pending.clientId,
    redirectUri: pending.redirectUri,
    codeChallenge: pending.codeChallenge,
    resource: pending.resource,
    scopes: user.scopes,
    subject: user.subject,
    authTime: user.authTime,
    ...(user.claims ? { claims: user.claims } : {}),
  });
  await as.pending.finish(id);
  as.logger.info({ event: 'authorization', client: pending.clientId, subject: user.subject, scopes: user.scopes, resource: pending.resource }, 'authorization code issued');
  // A pending authorization is its own redirect target (its redirectUri and the client's state).
  return redirectAnswer(pending, as.issuer, { code });
}

/** What the consent page calls the user: something a person recognises. */
export function displayName(claims: Readonly<Record<string, unknown>>, fallback: string): string {
  for (const claim of ['email', 'preferred_username', 'login', 'name']) {
    const value = claims[claim];
    if (typeof value === 'string' && value.trim() !== '') return value.slice(0, 200);
  }
  return fallback;
}
