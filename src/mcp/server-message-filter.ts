import type { AnswerTemplates } from './answer-template.js';
import { isObject } from './message.js';
import { filterJsonAnswer, filterJsonBody, hasJsonNameEscape, type FilterOutcome, type ListFilter, type MessageFilter } from './list-filter.js';

const RESOURCE_UPDATED = 'notifications/resources/updated';
// Byte needles made once (a string one is encoded to UTF-8 again on every search).
const RESOURCE_UPDATED_NEEDLE = Buffer.from(`"${RESOURCE_UPDATED}"`);
const LIST_CHANGED_NEEDLE = Buffer.from('/list_changed"');
/** A list-changed notification is about the list its method names. */
const LIST_CHANGED: Readonly<Record<string, ListMethod>> = {
  'notifications/tools/list_changed': 'tools/list',
  'notifications/prompts/list_changed': 'prompts/list',
  'notifications/resources/list_changed': 'resources/list',
};

export type ListMethod = 'tools/list' | 'prompts/list' | 'resources/list';

export interface ServerMessageFilterOptions {
  /** Marks a list the gateway changed as `cacheScope: "private"` (2026-07-28 caching). */
  readonly markPrivate: boolean;
  /** Whether an update about this resource may reach the client; absent: all may. */
  readonly resourceUpdateVisible?: ((uri: string) => boolean) | undefined;
  /** Whether the principal may read this list, so hear that it changed; absent: all may. */
  readonly listVisible?: ((method: ListMethod) => boolean) | undefined;
  /**
   * Ids of the tools/call requests this answer is for: a response to one of them is a tool's
   * result, relayed as the tool wrote it (never edited as if it were a list). A list under any
   * other id is filtered, whatever the body asked.
   */
  readonly toolCallIds?: Pick<ReadonlySet<string | number>, 'has'> | undefined;
}

/**
 * What one exchange's answer goes through: the route's list filter, and, for this principal,
 * the resources it may hear about. A list the gateway shortened is one principal's view, so in
 * 2026-07-28 it says `cacheScope: "private"`: no shared cache may serve it to someone else
 * (MCP 2026-07-28 schema, CacheableResult). A `notifications/resources/updated` about a URI the
 * principal may not read is dropped whole (the listen stream of 2026-07-28, the GET stream of
 * 2025 alike): its `uri` may be a child of what was subscribed to.
 */
export class ServerMessageFilter implements MessageFilter {
  constructor(
    private readonly lists: ListFilter | undefined,
    private readonly options: ServerMessageFilterOptions,
  ) {}

  mayConcern(bytes: Buffer): boolean {
    return (
      // The escape check once for all: each of these reads the whole answer.
      hasJsonNameEscape(bytes) ||
      (this.lists?.namesAList(bytes) ?? false) ||
      (this.options.resourceUpdateVisible !== undefined && bytes.indexOf(RESOURCE_UPDATED_NEEDLE) !== -1) ||
      (this.options.listVisible !== undefined && bytes.indexOf(LIST_CHANGED_NEEDLE) !== -1)
    );
  }

  apply(message: unknown): FilterOutcome {
    if (!isObject(message)) return 'keep';
    const list = typeof message.method === 'string' ? LIST_CHANGED[message.method] : undefined;
    // Whoever may not list tools (prompts, resources) hears nothing of their changes either.
    if (list !== undefined) return this.options.listVisible === undefined || this.options.listVisible(list) ? 'keep' : 'drop';
    const visible = this.options.resourceUpdateVisible;
    if (visible && message.method === RESOURCE_UPDATED) {
      const uri = isObject(message.params) ? message.params.uri : undefined;
      return typeof uri === 'string' && visible(uri) ? 'keep' : 'drop';
    }
    if (this.options.toolCallIds !== undefined && 'result' in message && this.options.toolCallIds.has(message.id as string | number)) return 'exempt';
    if (!this.lists?.filterMessage(message)) return 'keep';
    if (this.options.markPrivate && isObject(message.result)) message.result.cacheScope = 'private';
    return 'changed';
  }

  /**
   * Not for an answer to tool calls: a tool's result that happens to match a remembered list
   * answer around its id would be served the filtered list, not what the tool wrote.
   */
  answerTemplates(): AnswerTemplates | undefined {
    return this.options.toolCallIds === undefined ? this.lists?.answerTemplates(this.options.markPrivate) : undefined;
  }

  /** Filters a JSON body (one message or a batch); undefined when it cannot be read. */
  filterJsonBody(body: Buffer): Buffer | undefined {
    return filterJsonBody(this, body, this.answerTemplates());
  }

  /** As filterJsonBody, for an answer in the chunks it arrived in; see filterJsonAnswer. */
  filterJsonAnswer(chunks: readonly Buffer[]): readonly Buffer[] | undefined {
    return filterJsonAnswer(this, chunks, this.answerTemplates());
  }
}
