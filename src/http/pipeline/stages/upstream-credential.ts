import type { CredentialSource } from '../../../upstream-auth/registry.js';
import type { McpExchange } from '../exchange.js';
import type { Stage } from '../stage.js';

/**
 * The credential the upstream gets instead of the client's token (routes[].upstreamAuth), for
 * the principal admitted: at hand when cached (no promise), else obtained (a token exchange, a
 * file read). A credential that cannot be had is refused here, before anything is forwarded:
 * 401 with a fresh challenge when the client must authenticate again, 503 when the IdP is down.
 */
export function upstreamCredentialStage(source: CredentialSource): Stage {
  return function upstreamCredential(exchange) {
    const credential = source.current(exchange.admitted, exchange.incoming.headers.authorization);
    if (typeof credential === 'string') {
      exchange.upstreamCredential = credential;
      return undefined;
    }
    return credential.then((value) => keep(exchange, value));
  };
}

function keep(exchange: McpExchange, value: string): void {
  exchange.upstreamCredential = value;
}
