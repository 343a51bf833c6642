import type { ListFilter } from '../mcp/list-filter.js';
import type { ListMethod } from '../mcp/server-message-filter.js';

/** What the gateway learnt about one admitted request, carried to the response relay. */
export interface Exchange {
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
   * The body's requests are all tools/call: a JSON answer to it holds their results and nothing
   * else (Streamable HTTP §Sending Messages to the Server: a request is answered with one JSON
   * object, or an SSE stream), and a tool's result is not a list, so the list filter leaves it
   * alone. An SSE answer may carry server messages too and is still filtered.
   */
  readonly requestsOnlyToolCalls: boolean;
  /** 2026-07-28: no session to record, and filtered lists are marked cacheScope "private". */
  readonly stateless: boolean;
  /** Whether a notifications/resources/updated about this URI may reach the client; undefined: all may. */
  readonly resourceUpdateVisible: ((uri: string) => boolean) | undefined;
  /** Whether the principal may read a list, so hear that it changed. */
  readonly listVisible: (method: ListMethod) => boolean;
}
