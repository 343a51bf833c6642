import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../../auth/principal.js';
import type { RequestId } from '../../errors.js';
import { requestIdsOf, type McpBody } from '../../mcp/message.js';
import { ASSUMED_PROTOCOL_VERSION, type ProtocolVersion } from '../../mcp/protocol.js';
import type { SessionBinding } from '../../mcp/sessions.js';
import type { RequestRecord } from '../../observability/request-record.js';
import type { RequestTrace } from '../../observability/request-trace.js';
import type { MessageDecision } from '../../policy/enforce.js';

const NO_DECISIONS: readonly MessageDecision[] = [];

/**
 * One request on an MCP route, as the pipeline learns about it: each stage reads what the
 * stages before it found and adds what it finds (the comment on each field names the stage).
 * Typed state in one place instead of local variables and a bag of properties on the request.
 */
export class McpExchange {
  /** origin: a stage answered the request itself (a CORS preflight); the stages after it do not run. */
  answered = false;
  /** authenticate: whose token admitted the request. */
  principal: Principal | undefined = undefined;
  /** session: the request speaks 2026-07-28, which has no sessions. */
  stateless = false;
  /** session: the version the request speaks (its header, else its session's, else 2025-03-26). */
  protocolVersion: ProtocolVersion = ASSUMED_PROTOCOL_VERSION;
  /** session: the Mcp-Session-Id the request carries, checked. */
  sessionId: string | undefined = undefined;
  /** session: what the store knows of that session, owned by this principal. */
  session: SessionBinding | undefined = undefined;
  /** read and decide: the POST body's bytes, forwarded as they are. */
  bytes: Buffer | undefined = undefined;
  /** read and decide: the body, parsed once. */
  body: McpBody | undefined = undefined;
  /** read and decide: one decision per message, audited once (after the upstream answers, or with the refusal). */
  decisions: readonly MessageDecision[] = NO_DECISIONS;
  audited = false;
  /** upstream credential: the value of the route's upstreamAuth header for this principal; never logged. */
  upstreamCredential: string | undefined = undefined;
  /** forward: the upstream's answer, not yet relayed. */
  upstream: IncomingMessage | undefined = undefined;

  /** The request's trace when tracing is on (the record's, which ends it with the response). */
  get trace(): RequestTrace | undefined {
    return this.record?.trace;
  }

  constructor(
    readonly incoming: IncomingMessage,
    readonly outgoing: ServerResponse,
    /** What the access log will say about this request; undefined outside the gateway's listener (tests). */
    readonly record: RequestRecord | undefined,
    readonly method: string,
  ) {}

  /** The principal, once authenticate has run (every stage after it may rely on it). */
  get admitted(): Principal {
    return this.principal!;
  }

  /** Ids of the body's requests: each is answered, with an error if the exchange is refused. */
  get requestIds(): RequestId[] {
    return requestIdsOf(this.body);
  }

  /** A request whose answer is a stream that never ends by itself: a GET, or a 2026-07-28 subscriptions/listen. */
  get longLived(): boolean {
    const first = this.body?.messages[0];
    return this.method === 'GET' || (first?.kind === 'request' && first.method === 'subscriptions/listen');
  }
}
