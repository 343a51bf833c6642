import type { JsonRpcId } from '../errors.js';
import type { ProtocolVersion } from '../mcp/protocol.js';

/** What the gateway learnt about one admitted request, carried to the response relay. */
export interface Exchange {
  readonly route: string;
  readonly method: string;
  readonly principalKey: string;
  readonly protocolVersion: ProtocolVersion;
  readonly sessionId: string | undefined;
  /** Ids of tools/list requests in the body, whose answers must be filtered. */
  readonly toolsListIds: readonly JsonRpcId[];
  readonly isToolVisible: (toolName: string) => boolean;
}
