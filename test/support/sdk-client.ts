import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import { completeAuthorization } from '../../dev/idp.js';

/**
 * An OAuth client provider as an MCP host would write one, kept in memory. Its
 * "browser" is `completeAuthorization`, which logs the chosen subject in at the real IdP and
 * hands back the authorization code the redirect carries.
 */
export class TestOAuthProvider implements OAuthClientProvider {
  private info: OAuthClientInformationMixed | undefined;
  private savedTokens: OAuthTokens | undefined;
  private verifier = '';
  /** Every token the client obtained, in order: tests inspect scopes across step-up. */
  readonly tokenHistory: OAuthTokens[] = [];
  /** Every authorization request's scope parameter. */
  readonly requestedScopes: (string | null)[] = [];
  pendingCode: string | undefined;

  /** `subject` null: no login_hint, like a browser, so whoever the IdP logs in by default. */
  constructor(private readonly subject: string | null) {}

  get redirectUrl(): string {
    return 'http://127.0.0.1:1/callback';
  }

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'mcp-auth-gateway e2e client',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.savedTokens;
  }
  saveTokens(tokens: OAuthTokens) {
    this.savedTokens = tokens;
    this.tokenHistory.push(tokens);
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(url: URL) {
    this.requestedScopes.push(url.searchParams.get('scope'));
    const { code } = await completeAuthorization(url, this.subject === null ? {} : { subject: this.subject });
    this.pendingCode = code;
  }
}

/** A connected SDK client and the host glue that finishes an authorization when the SDK asks. */
export interface AuthorizedClient {
  readonly client: Client;
  readonly provider: TestOAuthProvider;
  readonly transport: StreamableHTTPClientTransport;
  /** Runs an MCP call; when the SDK stops for (re-)authorization, finishes it and retries once, as a host does. */
  withAuth<T>(call: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function connectAuthorizedClient(mcpUrl: string, subject: string | null = 'alice'): Promise<AuthorizedClient> {
  const provider = new TestOAuthProvider(subject);
  let transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
  let client = new Client({ name: 'e2e', version: '1.0.0' });
  try {
    await client.connect(transport);
  } catch (error) {
    if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
    await transport.finishAuth(takeCode(provider));
    // As the SDK's examples do: a fresh transport once authorised.
    transport = new StreamableHTTPClientTransport(new URL(mcpUrl), { authProvider: provider });
    client = new Client({ name: 'e2e', version: '1.0.0' });
    await client.connect(transport);
  }
  const current = { client, transport };
  return {
    client,
    provider,
    transport,
    async withAuth(call) {
      try {
        return await call();
      } catch (error) {
        if (!(error instanceof UnauthorizedError) || !provider.pendingCode) throw error;
        await current.transport.finishAuth(takeCode(provider));
        return call();
      }
    },
    async close() {
      await current.client.close();
    },
  };
}

function takeCode(provider: TestOAuthProvider): string {
  const code = provider.pendingCode!;
  provider.pendingCode = undefined;
  return code;
}
