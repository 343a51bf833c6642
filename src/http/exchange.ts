import type { ToolsListFilter } from '../mcp/list-filter.js';
import type { ProtocolVersion } from '../mcp/protocol.js';

/** What the gateway learnt about one admitted request, carried to the response relay. */
export interface Exchange {
  readonly route: string;
  readonly method: string;
  readonly principalKey: string;
  readonly protocolVersion: ProtocolVersion;
  readonly sessionId: string | undefined;
  /** Removes hidden tools from answers; undefined when the route's policy hides no tool. */
  readonly listFilter: ToolsListFilter | undefined;
}
