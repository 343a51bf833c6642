import type { Principal } from '../auth/principal.js';
import type { UpstreamAuthMode } from '../config/types.js';
import type { Refusal } from '../errors.js';

/**
 * Where one route's upstream credential comes from (routes[].upstreamAuth): one implementation
 * per mode. The pipeline asks for the credential before forwarding, sends it in `header`, and
 * tells the source when the upstream refused it (a 401), so that a fresh one is obtained once
 * (MCP authorization §Access Token Privilege Restriction: the upstream never gets the client's
 * token; it gets a credential of its own).
 */
export interface CredentialSource {
  readonly mode: UpstreamAuthMode;
  /** The lower-case header the credential goes in; a client-sent header of that name never passes. */
  readonly header: string;
  /**
   * The header value for this principal: a string when it is at hand (a cached exchange costs a
   * map lookup), a promise when it must be obtained. Throws or rejects with a Refusal when it
   * cannot be (nothing is forwarded then).
   */
  current(principal: Principal, authorization: string | undefined): string | Promise<string>;
  /** The upstream refused `value`: forget it, so that `current` obtains a fresh one. Never rejects. */
  forget(principal: Principal, value: string): Promise<void>;
  /**
   * What the client is told when the upstream refuses a credential obtained afresh, too (a
   * user's own token is dropped first, so that the user acts again).
   */
  refusedAgain(principal: Principal): Refusal | Promise<Refusal>;
  /** Stops what runs in the background (file watches); the source still answers. */
  close(): void;
}
