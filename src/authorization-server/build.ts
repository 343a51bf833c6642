import type { GatewayConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { KeyValueStore } from '../store/types.js';
import { SigningKeys } from './keys.js';
import { AuthorizationServer, endpointsOf, type ProtectedResource } from './service.js';
import { UpstreamIdp } from './upstream-idp.js';

/** What lives as long as the process, across reloads. */
export interface AuthorizationServerMemory {
  /** The key made when no signingKeys file is given: made once, so a reload keeps tokens valid. */
  generatedKeys?: SigningKeys;
}

export interface AuthorizationServerInputs {
  readonly config: GatewayConfig;
  readonly publicUrl: string;
  readonly resources: readonly ProtectedResource[];
  readonly store: KeyValueStore;
  readonly logger: Logger;
  readonly memory: AuthorizationServerMemory;
  /** The facade of the config in force before a reload: its IdP client is kept when unchanged. */
  readonly previous?: AuthorizationServer;
  readonly metadataDocumentCa?: string;
}

/**
 * The authorization server a config describes, or undefined when it has none. Keys come from the
 * config (read again on each reload: rotation) or from the process's generated key; the IdP
 * client, with its discovered metadata, is kept across a reload that leaves it as it was.
 */
export function buildAuthorizationServer(inputs: AuthorizationServerInputs): AuthorizationServer | undefined {
  const { config, publicUrl, logger, memory, previous } = inputs;
  const settings = config.authorizationServer;
  if (!settings) return undefined;
  const issuer = settings.issuer ?? publicUrl;
  let keys: SigningKeys;
  if (settings.signingKeys) keys = SigningKeys.fromJwks(settings.signingKeys);
  else {
    if (!memory.generatedKeys) {
      memory.generatedKeys = SigningKeys.generate();
      logger.warn({ kid: memory.generatedKeys.current.kid }, 'authorizationServer.signingKeys is not set: tokens are signed with a key generated now, which other replicas do not have and a restart forgets');
    }
    keys = memory.generatedKeys;
  }
  const callback = endpointsOf(issuer).urls.callback;
  const sameUpstream =
    previous !== undefined &&
    previous.issuer === issuer &&
    JSON.stringify(previous.upstream.config) === JSON.stringify(settings.upstream) &&
    previous.upstreamTimeoutMs === config.issuerDiscoveryTimeoutMs;
  const upstream = sameUpstream ? previous.upstream : new UpstreamIdp(settings.upstream, callback, config.issuerDiscoveryTimeoutMs, logger);
  return new AuthorizationServer({
    config: settings,
    issuer,
    store: inputs.store,
    keys,
    upstream,
    upstreamTimeoutMs: config.issuerDiscoveryTimeoutMs,
    resources: inputs.resources,
    connectedAccounts: config.routes.flatMap((route) => (route.upstreamAuth?.mode === 'connectedAccount' ? [route.upstreamAuth] : [])),
    idpTokenResources: config.routes.filter((route) => route.upstreamAuth?.mode === 'idpToken').map((route) => `${publicUrl}${route.path}`),
    logger,
    ...(inputs.metadataDocumentCa !== undefined ? { metadataDocumentCa: inputs.metadataDocumentCa } : {}),
  });
}
