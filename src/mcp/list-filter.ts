import { isObject } from './message.js';

/**
 * Removes hidden tools from every tools/list result (`{ tools: Tool[] }`) in what the upstream
 * sends, whatever request it claims to answer. Matching answers to the body's own tools/list
 * ids is not enough: an upstream may deliver an answer on another stream (two concurrent POSTs
 * reusing an id, or a resumed GET stream replaying earlier answers, Streamable HTTP
 * §Resumability and Redelivery), so any response carrying a tools list is filtered.
 */
export class ToolsListFilter {
  constructor(private readonly isVisible: (toolName: string) => boolean) {}

  /** Filters one server message in place; returns true when it changed. */
  filterMessage(message: unknown): boolean {
    if (!isObject(message) || !('id' in message) || !('result' in message)) return false;
    const result = message.result;
    if (!isObject(result) || !Array.isArray(result.tools)) return false;
    const visible = result.tools.filter((tool) => isObject(tool) && typeof tool.name === 'string' && this.isVisible(tool.name));
    if (visible.length === result.tools.length) return false;
    result.tools = visible;
    return true;
  }

  /**
   * Filters a whole JSON body (one message or a batch); returns the bytes to send, or undefined
   * when the body cannot be read: an answer that cannot be checked is not passed on.
   */
  filterJsonBody(body: Buffer): Buffer | undefined {
    if (!mayCarryToolsList(body)) return body;
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

/**
 * Cheap test before parsing: a `tools` member needs the bytes `"tools"`, which a JSON string
 * value cannot contain unescaped (its quotes would be `\"`), so most results are never parsed.
 */
export function mayCarryToolsList(bytes: Buffer): boolean {
  return bytes.indexOf('"tools"') !== -1;
}
