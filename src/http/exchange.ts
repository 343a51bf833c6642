import type { JsonRpcId } from '../errors.js';
import type { ProtocolVersion } from '../mcp/protocol.js';

/** What the gateway learnt about one admitted request, carried to the response relay. */
export interface Exchange {
  readonly route: string;
  readonly method: string;
  readonly principalKey: string;
  readonly protocolVersion: ProtocolVersion;
  readonly sessionId: string | undefined;
  /**
   * Which answers must have hidden tools removed: the ids of the body's tools/list requests, or
   * every response (a GET stream, which may replay earlier answers); undefined for none.
   */
  readonly listsToFilter: readonly JsonRpcId[] | 'every-response' | undefined;
  readonly isToolVisible: (toolName: string) => boolean;
}
