import type { KeyValueStore } from '../store/types.js';

/**
 * The authorization server's state in the shared store (memory, or Redis shared by replicas),
 * each kind under its own prefix, keyed by a digest of the handle a client or browser holds:
 * a flow begun on one replica finishes on any other.
 */
export const KEYS = {
  pending: (idDigest: string) => `as:pending:${idDigest}`,
  callbackUsed: (idDigest: string) => `as:pending-callback:${idDigest}`,
  decided: (idDigest: string) => `as:pending-decided:${idDigest}`,
  code: (codeDigest: string) => `as:code:${codeDigest}`,
  codeUsed: (codeDigest: string) => `as:code-used:${codeDigest}`,
  client: (clientId: string) => `as:client:${clientId}`,
  metadataDocument: (urlDigest: string) => `as:cimd:${urlDigest}`,
  consent: (subjectDigest: string, clientDigest: string) => `as:consent:${subjectDigest}:${clientDigest}`,
  family: (familyId: string) => `as:family:${familyId}`,
  familyRevoked: (familyId: string) => `as:family-revoked:${familyId}`,
  refresh: (tokenDigest: string) => `as:refresh:${tokenDigest}`,
  refreshUsed: (tokenDigest: string) => `as:refresh-used:${tokenDigest}`,
  idpTokens: (subjectDigest: string) => `as:idp-tokens:${subjectDigest}`,
  idpRefresh: (subjectDigest: string) => `as:idp-refresh:${subjectDigest}`,
  pageLogin: (idDigest: string) => `as:page-login:${idDigest}`,
  pageLoginUsed: (idDigest: string) => `as:page-login-used:${idDigest}`,
  connectRequest: (nonceDigest: string) => `as:connect-request:${nonceDigest}`,
  connectFlow: (stateDigest: string) => `as:connect-flow:${stateDigest}`,
  connectFlowUsed: (stateDigest: string) => `as:connect-flow-used:${stateDigest}`,
  connection: (connection: string, subjectDigest: string) => `as:connection:${connection}:${subjectDigest}`,
  connectionRefresh: (connection: string, subjectDigest: string) => `as:connection-refresh:${connection}:${subjectDigest}`,
  connectionsView: (idDigest: string) => `as:connections-view:${idDigest}`,
} as const;

/** A JSON record, or undefined when absent or (never written by us) unreadable. */
export async function readRecord<T>(store: KeyValueStore, key: string, touchTtlMs?: number): Promise<T | undefined> {
  const text = touchTtlMs === undefined ? await store.get(key) : await store.getAndTouch(key, touchTtlMs);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

export function writeRecord(store: KeyValueStore, key: string, value: unknown, ttlMs: number): Promise<void> {
  return store.set(key, JSON.stringify(value), ttlMs);
}
