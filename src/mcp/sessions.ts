import { Refusal } from '../errors.js';
import type { KeyValueStore } from '../store/types.js';

export interface SessionBinding {
  /** principalKey() of the principal that created the session. */
  readonly principal: string;
  readonly route: string;
  readonly protocolVersion: string;
}

/** Idle sessions are forgotten after this long; each use slides the window. */
export const SESSION_IDLE_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * Binds each upstream-assigned Mcp-Session-Id to the principal that created it, so a session id
 * is never a bearer credential on its own (MCP security best practices §Session Hijacking).
 */
export class SessionBindings {
  constructor(
    private readonly store: KeyValueStore,
    private readonly ttlMs = SESSION_IDLE_TTL_MS,
  ) {}

  async bind(sessionId: string, binding: SessionBinding): Promise<void> {
    await this.guard(() => this.store.set(key(binding.route, sessionId), JSON.stringify(binding), this.ttlMs));
  }

  /**
   * Refuses a session the principal does not own. An unknown session and another principal's
   * session get the same 404, so probing reveals nothing (Streamable HTTP §Session Management:
   * 404 makes the client start a new session).
   */
  async authorize(route: string, sessionId: string, principal: string): Promise<SessionBinding> {
    const stored = await this.guard(() => this.store.get(key(route, sessionId)));
    const binding = stored === undefined ? undefined : (JSON.parse(stored) as SessionBinding);
    if (!binding || binding.principal !== principal) throw new Refusal('session_not_found', 'Session not found');
    await this.guard(() => this.store.set(key(route, sessionId), stored!, this.ttlMs));
    return binding;
  }

  async forget(route: string, sessionId: string): Promise<void> {
    await this.guard(() => this.store.delete(key(route, sessionId)));
  }

  /** Without the store we cannot tell who owns a session: fail closed, never unbound. */
  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof Refusal) throw error;
      throw new Refusal('store_unavailable', 'Session store unavailable', { retryAfterSeconds: 1 });
    }
  }
}

function key(route: string, sessionId: string): string {
  return `session:${route}:${sessionId}`;
}
