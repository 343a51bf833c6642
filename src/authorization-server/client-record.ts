export type GrantType = 'authorization_code' | 'refresh_token';

/** A client as the authorization server knows it, however it was registered. Always public. */
export interface ClientRecord {
  readonly clientId: string;
  readonly clientName?: string;
  readonly redirectUris: readonly string[];
  readonly grantTypes: readonly GrantType[];
  readonly applicationType: 'web' | 'native';
  readonly registeredBy: 'config' | 'dynamic' | 'metadata-document';
}
