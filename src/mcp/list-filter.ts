import type { JsonRpcId } from '../errors.js';

/**
 * Removes hidden tools from tools/list results (tools/list result: `{ tools: Tool[] }`).
 *
 * On a POST, only answers to the body's own tools/list requests are touched: `pending` counts
 * them per id (a 2025-03-26 batch may repeat an id, and each answer must be filtered). A GET
 * stream may replay earlier answers when resumed (Streamable HTTP §Resumability and
 * Redelivery), whose ids the gateway cannot know: there every response is inspected.
 */
export class ToolsListFilter {
  private readonly pending = new Map<JsonRpcId, number>();
  private readonly everyResponse: boolean;

  constructor(
    requestIds: Iterable<JsonRpcId> | 'every-response',
    private readonly isVisible: (toolName: string) => boolean,
  ) {
    this.everyResponse = requestIds === 'every-response';
    if (requestIds !== 'every-response') for (const id of requestIds) this.pending.set(id, (this.pending.get(id) ?? 0) + 1);
  }

  /** True once nothing more can need filtering, so the rest of a stream can pass untouched. */
  get done(): boolean {
    return !this.everyResponse && this.pending.size === 0;
  }

  /** Filters one server message in place; returns true when it changed. */
  filterMessage(message: unknown): boolean {
    if (!isObject(message) || !('id' in message)) return false;
    if (!('result' in message) && !('error' in message)) return false; // a server request, not an answer
    if (!this.everyResponse && !this.settle(message.id as JsonRpcId)) return false;
    const result = message.result;
    if (!isObject(result) || !Array.isArray(result.tools)) return false;
    const visible = result.tools.filter((tool) => isObject(tool) && typeof tool.name === 'string' && this.isVisible(tool.name));
    if (visible.length === result.tools.length) return false;
    result.tools = visible;
    return true;
  }

  private settle(id: JsonRpcId): boolean {
    const count = this.pending.get(id);
    if (count === undefined) return false;
    if (count > 1) this.pending.set(id, count - 1);
    else this.pending.delete(id);
    return true;
  }

  /**
   * Filters a whole JSON body (one message or a batch); returns the bytes to send, or undefined
   * when the body cannot be read: an answer that cannot be checked is not passed on.
   */
  filterJsonBody(body: Buffer): Buffer | undefined {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      return undefined;
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
