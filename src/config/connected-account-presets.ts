import type { ConnectedAccountPreset } from './types.js';

/**
 * What each third-party service needs of routes[].upstreamAuth.connectedAccount: its endpoints,
 * how it takes the client secret, the parameters its authorization request needs, and its name
 * on the gateway's pages. Plain data, read by the config loader as defaults the section's own
 * keys override.
 */
export interface ConnectedAccountPresetDefaults {
  readonly name?: string;
  readonly authorizationEndpoint?: string;
  readonly tokenEndpoint?: string;
  readonly authMethod: 'client_secret_basic' | 'client_secret_post';
  readonly authorizationParameters?: Readonly<Record<string, string>>;
}

export const CONNECTED_ACCOUNT_PRESET_DEFAULTS: Readonly<Record<ConnectedAccountPreset, ConnectedAccountPresetDefaults>> = {
  // RFC 6749 §2.3.1: Basic is what every authorization server must accept.
  generic: { authMethod: 'client_secret_basic' },
  // GitHub ("Authorizing OAuth apps"): the secret in the body; PKCE S256 is accepted; tokens of
  // GitHub Apps expire after 8 hours and come with a refresh token, OAuth apps' never expire.
  github: {
    name: 'GitHub',
    authorizationEndpoint: 'https://github.com/login/oauth/authorize',
    tokenEndpoint: 'https://github.com/login/oauth/access_token',
    authMethod: 'client_secret_post',
  },
  // Atlassian Cloud ("OAuth 2.0 (3LO) apps"): audience api.atlassian.com and prompt=consent are
  // required on the authorization request; a refresh token only with the offline_access scope.
  atlassian: {
    name: 'Atlassian',
    authorizationEndpoint: 'https://auth.atlassian.com/authorize',
    tokenEndpoint: 'https://auth.atlassian.com/oauth/token',
    authMethod: 'client_secret_post',
    authorizationParameters: { audience: 'api.atlassian.com', prompt: 'consent' },
  },
};
