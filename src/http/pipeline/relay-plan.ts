import type { RequestId } from '../../errors.js';
import type { ListFilter } from '../../mcp/list-filter.js';
import type { ListMethod } from '../../mcp/server-message-filter.js';

/**
 * What the relay needs to know about one admitted request to hand its answer over: made by the
 * relay stage from the exchange, so the relay (and what it leaves open for a stream) keeps only
 * this, never the request's body, decisions or token.
 */
export interface RelayPlan {
  readonly routeName: string;
  readonly method: string;
  readonly principalKey: string;
  /** The version a session created by this request is recorded with. */
  readonly protocolVersion: string;
  readonly sessionId: string | undefined;
  /**
   * A stream that never ends by itself: the GET stream, or a 2026-07-28 subscriptions/listen
   * answer. It ends at the token's expiry and is not waited for at shutdown.
   */
  readonly longLived: boolean;
  /** When the token that admitted this request expires (ms since the epoch). */
  readonly tokenExpiresAtMs: number;
  /** Removes hidden tools from answers; undefined when the route's policy hides no tool. */
  readonly listFilter: ListFilter | undefined;
  /**
   * Ids of the body's tools/call requests: a response under one of them is that tool's result,
   * relayed as the tool wrote it (a tool's result is not a list). Undefined when there are none.
   */
  readonly toolCallIds: Pick<ReadonlySet<RequestId>, 'has'> | undefined;
  /** 2026-07-28: no session to record, and filtered lists are marked cacheScope "private". */
  readonly stateless: boolean;
  /** Whether a notifications/resources/updated about this URI may reach the client; undefined: all may. */
  readonly resourceUpdateVisible: ((uri: string) => boolean) | undefined;
  /** Whether the principal may read a list, so hear that it changed. */
  readonly listVisible: (method: ListMethod) => boolean;
  /** Whether some notification may be kept from this principal (see the two above): then every answer is checked. */
  readonly hidesNotifications: boolean;
}
