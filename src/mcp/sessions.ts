import { BoundedMap } from '../cache/bounded-map.js';
import { Refusal } from '../errors.js';
import { ASSUMED_PROTOCOL_VERSION, asSupportedVersion, isValidSessionId } from './protocol.js';
import type { KeyValueStore } from '../store/types.js';

export interface SessionBinding {
  /** principalKey() of the principal that created the session. */
  readonly principal: string;
  readonly route: string;
  readonly protocolVersion: string;
}

/** What the session bookkeeping needs to know of one upstream answer. */
export interface UpstreamAnswer {
  readonly method: string;
  readonly status: number;
  /** The Mcp-Session-Id the request carried. */
  readonly sessionId: string | undefined;
  /** The Mcp-Session-Id the upstream answered with. */
  readonly assignedSessionId: string | undefined;
}

export interface SessionLimits {
  /** A binding unused this long is forgotten; each use slides the window. */
  readonly idleTimeoutMs: number;
  /** Sessions one principal may hold per route; beyond it, that principal's oldest ends. */
  readonly maxPerPrincipal: number;
}

/**
 * Binds each upstream-assigned Mcp-Session-Id to the principal that created it, so a session id
 * is never a bearer credential on its own (MCP security best practices §Session Hijacking).
 * Each principal's sessions are capped, so one principal opening sessions in a loop can only
 * ever end its own, never anyone else's.
 */
export class SessionBindings {
  /**
   * Stored bindings already parsed, by their stored text (null: it does not parse): a session's
   * binding never changes, and every request on it would otherwise parse it again. Bounded in
   * count and in characters (a long text is parsed each time, not kept); cleared when full.
   */
  private readonly parsed = new BoundedMap<string, SessionBinding | null>({
    maxEntries: PARSED_BINDINGS_KEPT,
    maxWeight: PARSED_BINDINGS_MAX_CHARS,
    maxEntryWeight: PARSED_BINDING_MAX_CHARS,
    weigh: (stored) => stored.length,
    whenFull: 'clear',
  });

  constructor(
    private readonly store: KeyValueStore,
    private readonly limits: SessionLimits,
  ) {}

  async bind(sessionId: string, binding: SessionBinding): Promise<void> {
    // Only a version the gateway speaks is kept: a client's initialize may name any string, of
    // any length, and the binding outlives the request by a day.
    const stored: SessionBinding = { principal: binding.principal, route: binding.route, protocolVersion: supportedOrAssumed(binding.protocolVersion) };
    await this.guard(async () => {
      await this.store.set(sessionKey(binding.route, sessionId), JSON.stringify(stored), this.limits.idleTimeoutMs);
      await this.track(sessionId, binding);
    });
  }

  /**
   * Refuses a session the principal does not own. An unknown session and another principal's
   * session get the same 404, so probing reveals nothing (Streamable HTTP §Session Management:
   * 404 makes the client start a new session).
   */
  async authorize(route: string, sessionId: string, principal: string): Promise<SessionBinding> {
    let stored: string | undefined;
    try {
      // Every request on a session comes here: the store is awaited directly, not through
      // guard's closure and extra promise.
      stored = await this.store.getAndTouch(sessionKey(route, sessionId), this.limits.idleTimeoutMs);
    } catch (error) {
      throw storeFailure(error);
    }
    return this.ownedBinding(stored, principal);
  }

  private ownedBinding(stored: string | undefined, principal: string): SessionBinding {
    const binding = stored === undefined ? undefined : this.parsedBinding(stored);
    if (!binding || binding.principal !== principal) throw new Refusal('session_not_found', 'Session not found');
    return binding;
  }

  /**
   * Before forwarding a request that will create a session (initialize): the store must answer
   * now, and have room for the binding and its index entry, or the upstream would open a session
   * the gateway then cannot bind to its owner.
   */
  async ensureAvailable(): Promise<void> {
    if (!this.store.hasRoom(2, BIND_BYTES)) throw new Refusal('store_unavailable', 'Session store full', { retryAfterSeconds: 1 });
    await this.guard(() => this.store.ping());
  }

  async forget(route: string, sessionId: string, principal: string): Promise<void> {
    await this.guard(async () => {
      await this.store.delete(sessionKey(route, sessionId));
      await this.store.removeFromIndex(indexKey(route, principal), [sessionId]);
    });
  }

  /**
   * Keeps bindings in step with an upstream answer: a newly assigned session id is bound to the
   * principal (before the client can learn it); a session ended by DELETE, or that the upstream
   * no longer knows (404), is forgotten.
   */
  async recordAnswer(answer: UpstreamAnswer, binding: SessionBinding): Promise<void> {
    const assigned = assignedId(answer);
    if (assigned !== undefined) {
      // An id the client could never send back (control characters, huge) is the upstream's fault.
      if (!isValidSessionId(assigned)) throw new Refusal('upstream_unreachable', 'Upstream assigned an invalid session id');
      await this.bind(assigned, binding);
    }
    const ended = endedId(answer);
    if (ended !== undefined) await this.forget(binding.route, ended, binding.principal);
  }

  /** Whether recordAnswer has anything to do: most answers neither start nor end a session. */
  static changesSessions(answer: UpstreamAnswer): boolean {
    return assignedId(answer) !== undefined || endedId(answer) !== undefined;
  }

  /**
   * Adds the session to its principal's index (oldest first, atomic in the store, so replicas
   * binding at once cannot lose each other's entries); past the cap, ends the oldest that still
   * exist. The index outlives idle bindings, so a long-used session still counts.
   */
  private async track(sessionId: string, binding: SessionBinding): Promise<void> {
    const key = indexKey(binding.route, binding.principal);
    const size = await this.store.addToIndex(key, sessionId, this.limits.idleTimeoutMs * INDEX_TTL_FACTOR);
    if (size <= this.limits.maxPerPrincipal) return;
    // Only now, rarely, drop ids whose bindings already expired, so they do not count.
    const ids = await this.store.indexMembers(key);
    const alive = await Promise.all(ids.map(async (id) => (await this.store.get(sessionKey(binding.route, id))) !== undefined));
    const dead = ids.filter((_, i) => !alive[i]);
    const living = ids.filter((_, i) => alive[i]);
    const ended = living.slice(0, Math.max(0, living.length - this.limits.maxPerPrincipal));
    await this.store.removeFromIndex(key, [...dead, ...ended]);
    if (ended.length > 0) await this.store.delete(...ended.map((id) => sessionKey(binding.route, id)));
  }

  private parsedBinding(stored: string): SessionBinding | undefined {
    const known = this.parsed.get(stored);
    if (known !== undefined) return known ?? undefined;
    const binding = parseBinding(stored);
    this.parsed.set(stored, binding ?? null);
    return binding;
  }

  /** What the parsed-binding cache holds: for tests. */
  get parsedCacheUsage(): { readonly entries: number; readonly chars: number } {
    return { entries: this.parsed.size, chars: this.parsed.weight };
  }

  /** Without the store we cannot tell who owns a session: fail closed, never unbound. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      throw storeFailure(error);
    }
  }
}

/** A refusal passes as it is; any other failure of the store refuses with 503 (fail closed). */
function storeFailure(error: unknown): Refusal {
  return error instanceof Refusal ? error : new Refusal('store_unavailable', 'Session store unavailable', { retryAfterSeconds: 1 });
}

/**
 * A binding that does not parse (a foreign or damaged value) proves no owner: treated as unknown.
 * One stored before versions were checked keeps its owner, with a version the gateway speaks.
 */
function parseBinding(stored: string): SessionBinding | undefined {
  try {
    const value = JSON.parse(stored) as Partial<SessionBinding> | null;
    return typeof value?.principal === 'string' && typeof value.route === 'string' && typeof value.protocolVersion === 'string'
      ? { principal: value.principal, route: value.route, protocolVersion: supportedOrAssumed(value.protocolVersion) }
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The version a session is bound with. Streamable HTTP §Protocol Version Header: without the
 * header the server assumes 2025-03-26, which is also what a later request would read from an
 * unsupported stored version.
 */
function supportedOrAssumed(version: string): string {
  return asSupportedVersion(version) ?? ASSUMED_PROTOCOL_VERSION;
}

const PARSED_BINDINGS_KEPT = 4096;
/** The cache's texts in all; a binding is ~150 characters (a long subject makes it longer). */
const PARSED_BINDINGS_MAX_CHARS = 2 * 1024 * 1024;
/** A longer binding is parsed on each use instead of kept. */
const PARSED_BINDING_MAX_CHARS = 8 * 1024;
/** What hasRoom() is asked to keep for one bind: a binding and an index member, generously. */
const BIND_BYTES = 4 * 1024;

/** How much longer than an idle binding the per-principal index lives (it is refreshed on bind). */
const INDEX_TTL_FACTOR = 4;

function sessionKey(route: string, sessionId: string): string {
  return `session:${route}:${sessionId}`;
}

function indexKey(route: string, principal: string): string {
  return `sessions-of:${route}:${principal}`;
}

/** The session id the upstream gave the client, if this answer gave a new one. */
function assignedId({ assignedSessionId, sessionId, status }: UpstreamAnswer): string | undefined {
  return assignedSessionId !== sessionId && status < 300 ? assignedSessionId : undefined;
}

/** The session the request named, if it is over: ended by DELETE, or unknown to the upstream (404). */
function endedId({ sessionId, method, status }: UpstreamAnswer): string | undefined {
  return (method === 'DELETE' && status < 300) || status === 404 ? sessionId : undefined;
}
