import type { KeyValueStore } from '../store/types.js';
import { KEYS, readRecord, writeRecord } from './records.js';
import { digest } from './secrets.js';

/**
 * What each user approved for each client (MCP authorization §Security Considerations, confused
 * deputy: a proxy with one static client id at the IdP keeps a registry of approved clients per
 * user, and FastMCP GHSA-c2jp-c369-7pvx is what happens without one). Keyed by the pair, so one
 * client's approval never covers another.
 */
export class Consents {
  constructor(
    private readonly store: KeyValueStore,
    private readonly rememberForMs: number,
  ) {}

  /** The scopes this user approved for this client, or undefined when never (or long ago). */
  async approved(subject: string, clientId: string): Promise<string[] | undefined> {
    const record = await readRecord<{ scopes: string[] }>(this.store, KEYS.consent(digest(subject), digest(clientId)));
    return record?.scopes;
  }

  async remember(subject: string, clientId: string, scopes: readonly string[]): Promise<void> {
    await writeRecord(this.store, KEYS.consent(digest(subject), digest(clientId)), { scopes }, this.rememberForMs);
  }
}
