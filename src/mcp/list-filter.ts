import type { JsonRpcId } from '../errors.js';

/**
 * Removes hidden tools from tools/list results (tools/list result: `{ tools: Tool[] }`).
 * `pending` holds the ids of the client's tools/list requests still unanswered; only responses
 * to those are touched, so a tool result that happens to contain a `tools` array is left alone.
 */
export class ToolsListFilter {
  private readonly pending: Set<JsonRpcId>;

  constructor(
    requestIds: Iterable<JsonRpcId>,
    private readonly isVisible: (toolName: string) => boolean,
  ) {
    this.pending = new Set(requestIds);
  }

  get done(): boolean {
    return this.pending.size === 0;
  }

  /** Filters one server message in place; returns true when it changed. */
  filterMessage(message: unknown): boolean {
    if (!isObject(message) || !('id' in message) || !this.pending.has(message.id as JsonRpcId)) return false;
    if (!('result' in message) && !('error' in message)) return false; // a server request reusing the id
    this.pending.delete(message.id as JsonRpcId);
    const result = message.result;
    if (!isObject(result) || !Array.isArray(result.tools)) return false;
    const visible = result.tools.filter((tool) => isObject(tool) && typeof tool.name === 'string' && this.isVisible(tool.name));
    if (visible.length === result.tools.length) return false;
    result.tools = visible;
    return true;
  }

  /** Filters a whole JSON body (one message or a batch); returns the bytes to send. */
  filterJsonBody(body: Buffer): Buffer {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return body; // not JSON: nothing we can filter, and the client will reject it anyway
    }
    const messages = Array.isArray(parsed) ? parsed : [parsed];
    let changed = false;
    for (const message of messages) changed = this.filterMessage(message) || changed;
    return changed ? Buffer.from(JSON.stringify(parsed)) : body;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
