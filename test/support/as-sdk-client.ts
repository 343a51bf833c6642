import { randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { auth, UnauthorizedError, type OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { TestBrowser } from './as-browser.js';

/**
 * An MCP host's OAuth provider for the gateway's own authorization server: its "browser" is a
 * TestBrowser that logs in at the IdP and answers the gateway's consent page.
 */
export class AsHostProvider implements OAuthClientProvider {
  private info: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = '';
  private expectedState = '';
  readonly tokenHistory: OAuthTokens[] = [];
  readonly requestedScopes: (string | null)[] = [];
  /** Whether each authorization showed the consent page. */
  readonly consentShown: boolean[] = [];
  pendingCode: string | undefined;
  readonly redirectUrl = 'http://127.0.0.1:7778/callback';

  constructor(
    readonly browser: TestBrowser,
    /** A Client ID Metadata Document URL (https): used when the server offers CIMD. */
    readonly clientMetadataUrl?: string,
  ) {}

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'SDK host <with "markup">',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state(): string {
    this.expectedState = randomBytes(16).toString('base64url');
    return this.expectedState;
  }
  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
    this.tokenHistory.push(tokens);
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  /** What a host does when its access token was lost or rejected: keep only the refresh token. */
  spoilAccessToken(): void {
    if (this.saved) this.saved = { ...this.saved, access_token: 'not-a-valid-token' };
  }
  forgetRefreshToken(): void {
    if (this.saved) this.saved = { ...this.saved, refresh_token: undefined } as OAuthTokens;
  }
  async redirectToAuthorization(url: URL) {
    this.requestedScopes.push(url.searchParams.get('scope'));
    const { outcome, consentShown } = await this.browser.authorize(url, this.redirectUrl);
    this.consentShown.push(consentShown);
    if (outcome.kind !== 'redirect' || outcome.code === undefined) throw new Error(`authorization ended without a code: ${JSON.stringify(outcome.kind === 'page' ? outcome.html.slice(0, 300) : outcome)}`);
    if (outcome.state !== this.expectedState) throw new Error('state mismatch in the authorization response');
    this.pendingCode = outcome.code;
  }
}

export interface HostSession {
  readonly client: Client;
  readonly provider: AsHostProvider;
  /** Runs an MCP call as a host does: finishes an authorization the SDK started, and steps up when asked. */
  withAuth<T>(call: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** Connects the SDK client through the gateway, authorising as the SDK decides. */
export async function connectHost(mcpUrl: string, provider: AsHostProvider): Promise<HostSession> {
  let lastChallenge: string | null = null;
  // Remembers the last step-up challenge, which the SDK does not hand back (see withAuth).
  const recordingFetch: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    if (response.status === 403) lastChallenge = response.headers.get('www-authenticate');
    return response;
  };
  const connect = async () => {
    const transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: recordingFetch });
    const client = new Client({ name: 'as-e2e-host', version: '1.0.0' });
    await client.connect(transport);
    return { client, transport };
  };
  let current;
  try {
    current = await connect();
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
    const probe = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider, fetch: recordingFetch });
    await probe.finishAuth(take(provider));
    current = await connect();
  }
  const session = current;
  return {
    client: session.client,
    provider,
    async withAuth(call) {
      try {
        return await call();
      } catch (error) {
        if (error instanceof UnauthorizedError && provider.pendingCode) {
          await session.transport.finishAuth(take(provider));
          return call();
        }
        // SDK 1.32 answers a step-up challenge by refreshing, which cannot widen scope (RFC 6749
        // §6), then gives up (typescript-sdk#2255). A host works around it: a new authorization
        // for the challenged scopes, without the refresh token.
        if (error instanceof StreamableHTTPError && error.code === 403 && lastChallenge?.includes('insufficient_scope')) {
          const scope = /scope="([^"]*)"/.exec(lastChallenge)?.[1];
          provider.forgetRefreshToken();
          const started = await auth(provider, { serverUrl: new URL(mcpUrl), ...(scope ? { scope } : {}), fetchFn: recordingFetch });
          if (started !== 'REDIRECT' || !provider.pendingCode) throw error;
          await auth(provider, { serverUrl: new URL(mcpUrl), authorizationCode: take(provider), fetchFn: recordingFetch });
          return call();
        }
        throw error;
      }
    },
    async close() {
      await session.client.close();
    },
  };
}

function take(provider: AsHostProvider): string {
  const code = provider.pendingCode!;
  provider.pendingCode = undefined;
  return code;
}
