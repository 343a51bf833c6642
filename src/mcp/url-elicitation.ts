import { Refusal } from '../errors.js';
import type { McpBody, McpMessage } from './message.js';
import { isStateless, type ProtocolVersion } from './protocol.js';

/** 2026-07-28 basic/utilities/mrtr §Supported Requests: the requests an input-required result may answer. */
const INPUT_REQUIRED_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** The key of the connect elicitation in an input-required result's `inputRequests`. */
export const CONNECT_INPUT_KEY = 'connect_account';

/**
 * How an account the user must connect first (upstream_account_not_connected, carrying a URL
 * elicitation) is told to the client, in the words of the version its request speaks (pure):
 *
 * - 2025-11-25 and earlier: each request is answered with URLElicitationRequiredError, -32042,
 *   `data.elicitations` one URL-mode elicitation (client/elicitation §URL Elicitation Required
 *   Error); the client opens the URL and retries. Older clients do not know the code, but its
 *   message names the URL.
 * - 2026-07-28: a tools/call, prompts/get or resources/read is answered with an input-required
 *   result embedding a URL-mode elicitation/create (basic/utilities/mrtr); the elicitationId of
 *   2025-11-25 is not part of that shape. A request that did not declare URL elicitation in its
 *   `_meta` capabilities is refused with MissingRequiredClientCapability (-32021, 400), since the
 *   server MUST NOT send input requests the client did not declare. Other methods cannot carry
 *   one and keep the refusal (403), whose message names the URL.
 * - Without a request to answer (notifications, GET, DELETE): the refusal as it is.
 */
export function elicitationAnswer(refusal: Refusal, version: ProtocolVersion, body: McpBody | undefined): Refusal {
  const elicitation = refusal.details.elicitation;
  if (refusal.code !== 'upstream_account_not_connected' || elicitation === undefined) return refusal;
  const requests = body?.messages.filter((message): message is Extract<McpMessage, { kind: 'request' }> => message.kind === 'request') ?? [];
  if (requests.length === 0) return refusal;
  if (!isStateless(version)) {
    return new Refusal('url_elicitation_required', 'This request requires more information.', {
      data: { elicitations: [{ mode: 'url', elicitationId: elicitation.elicitationId, url: elicitation.url, message: elicitation.message }] },
    });
  }
  const method = requests[0]!.method;
  if (requests.length !== 1 || !INPUT_REQUIRED_METHODS.has(method)) return refusal;
  if (body?.metaUrlElicitation !== true) {
    return new Refusal('missing_client_capability', `${elicitation.message} This client did not declare URL elicitation: open ${elicitation.url}, then retry.`, {
      data: { requiredCapabilities: { elicitation: { url: {} } } },
    });
  }
  return new Refusal('input_required', elicitation.message, {
    result: {
      resultType: 'input_required',
      inputRequests: { [CONNECT_INPUT_KEY]: { method: 'elicitation/create', params: { mode: 'url', message: elicitation.message, url: elicitation.url } } },
    },
  });
}
