/**
 * The tools the MCP conformance suite's server scenarios call by name
 * (`@modelcontextprotocol/conformance`, `src/scenarios/server/*`: each scenario's description
 * names the tool and the exact result it expects). Test support only: written for this
 * repository against the real SDK v2 server (`@modelcontextprotocol/server`), because neither
 * the suite nor the SDK publishes its reference "everything" server.
 */
import { randomUUID } from 'node:crypto';
import {
  acceptedContent,
  CLIENT_CAPABILITIES_META_KEY,
  fromJsonSchema,
  inputRequired,
  inputResponse,
  ProtocolError,
  ProtocolErrorCode,
  type CallToolResult,
  type ClientCapabilities,
  type InputRequests,
  type McpServer,
  type RequestStateCodec,
  type ServerContext,
} from '@modelcontextprotocol/server';
import { z } from 'zod';

/** A 1×1 PNG and a minimal WAV: the scenarios only check type, mimeType and that data is base64. */
export const PNG_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==';
export const WAV_BASE64 = 'UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=';

/** What the tools need from the HTTP side: publishing list changes to 2026 listen streams. */
export interface EverythingHooks {
  toolsChanged(): void;
  promptsChanged(): void;
}

export type StateCodec = RequestStateCodec<Record<string, unknown>>;

const NO_ARGS = z.object({});
// Not a JSON Schema keyword, so it cannot be written inline where the schema type is checked.
const MIRRORED_REGION = { type: 'string', 'x-mcp-header': 'Region' } as const;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const text = (value: string): CallToolResult => ({ content: [{ type: 'text', text: value }] });
const askName = (message = 'What is your name?') =>
  inputRequired.elicit({ message, requestedSchema: { type: 'object', properties: { name: { type: 'string' } }, required: ['name'] } });
const askConfirm = () =>
  inputRequired.elicit({ message: 'Please confirm', requestedSchema: { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'] } });

export function registerTools(server: McpServer, codec: StateCodec, hooks: EverythingHooks): void {
  registerContentTools(server);
  registerStreamingTools(server);
  registerPushInteractionTools(server);
  registerInputRequiredTools(server, codec);
  registerStatelessDiagnostics(server, hooks);
}

/** tools-call-simple-text, -image, -audio, -embedded-resource, -mixed-content, -error; json-schema-2020-12. */
function registerContentTools(server: McpServer): void {
  // First in tools/list on purpose: the SEP-2243 header scenarios call the first listed tool
  // with empty arguments, and the custom-header one looks for an x-mcp-header annotation.
  server.registerTool(
    'test_x_mcp_header',
    {
      description: 'Mirrors its region argument into Mcp-Param-Region (SEP-2243)',
      inputSchema: fromJsonSchema<{ region?: string; level?: number }>({ type: 'object', properties: { region: MIRRORED_REGION, level: { type: 'integer' } } }),
    },
    (args) => text(`region=${args.region ?? '<none>'}`),
  );
  server.registerTool('test_simple_text', { description: 'Returns simple text' }, () => text('This is a simple text response for testing.'));
  server.registerTool('test_image_content', { description: 'Returns an image' }, () => ({
    content: [{ type: 'image', data: PNG_BASE64, mimeType: 'image/png' }],
  }));
  server.registerTool('test_audio_content', { description: 'Returns audio' }, () => ({
    content: [{ type: 'audio', data: WAV_BASE64, mimeType: 'audio/wav' }],
  }));
  server.registerTool('test_embedded_resource', { description: 'Returns an embedded resource' }, () => ({
    content: [{ type: 'resource', resource: { uri: 'test://embedded-resource', mimeType: 'text/plain', text: 'This is an embedded resource content.' } }],
  }));
  server.registerTool('test_multiple_content_types', { description: 'Returns text, image and resource' }, () => ({
    content: [
      { type: 'text', text: 'Multiple content types test:' },
      { type: 'image', data: PNG_BASE64, mimeType: 'image/png' },
      { type: 'resource', resource: { uri: 'test://mixed-content-resource', mimeType: 'application/json', text: JSON.stringify({ test: 'data', value: 123 }) } },
    ],
  }));
  // The SDK turns a thrown error into a result with isError: true, which is what the scenario wants.
  server.registerTool('test_error_handling', { description: 'Always fails' }, () => {
    throw new Error('This tool intentionally returns an error for testing');
  });
  server.registerTool(
    'json_schema_2020_12_tool',
    {
      description: 'Tool with JSON Schema 2020-12 features',
      // Hand-written JSON (not zod) so every 2020-12 keyword is listed exactly as written.
      inputSchema: fromJsonSchema({
        $schema: 'https://json-schema.org/draft/2020-12/schema',
        type: 'object',
        $defs: { address: { $anchor: 'addressDef', type: 'object', properties: { street: { type: 'string' }, city: { type: 'string' } } } },
        properties: {
          name: { type: 'string' },
          address: { $ref: '#/$defs/address' },
          contactMethod: { type: 'string', enum: ['phone', 'email'] },
          phone: { type: 'string' },
          email: { type: 'string' },
        },
        allOf: [{ anyOf: [{ required: ['phone'] }, { required: ['email'] }] }],
        if: { properties: { contactMethod: { const: 'phone' } }, required: ['contactMethod'] },
        then: { required: ['phone'] },
        else: { required: ['email'] },
        additionalProperties: false,
      }),
    },
    (args) => text(`called with ${JSON.stringify(args)}`),
  );
}

/** Messages related to a request, on its own response stream: logging, progress, a cut stream. */
function registerStreamingTools(server: McpServer): void {
  server.registerTool('test_tool_with_logging', { description: 'Logs three times while running', inputSchema: NO_ARGS }, async (_args, ctx) => {
    for (const data of ['Tool execution started', 'Tool processing data', 'Tool execution completed']) {
      await ctx.mcpReq.notify({ method: 'notifications/message', params: { level: 'info', data } });
      await sleep(20);
    }
    return text('Tool with logging executed successfully');
  });

  server.registerTool('test_tool_with_progress', { description: 'Reports progress 0, 50, 100', inputSchema: NO_ARGS }, async (_args, ctx) => {
    const progressToken = ctx.mcpReq._meta?.progressToken;
    // Progress only for a client-supplied token (basic/utilities/progress).
    if (progressToken !== undefined) {
      for (const progress of [0, 50, 100]) {
        await ctx.mcpReq.notify({ method: 'notifications/progress', params: { progressToken, progress, total: 100 } });
        await sleep(20);
      }
    }
    return text(String(progressToken ?? 'no-progress-token'));
  });

  // SEP-1699: closes the POST's SSE stream mid-call; the client resumes with Last-Event-ID
  // on GET and the result is replayed from the session's event store.
  server.registerTool('test_reconnection', { description: 'Closes its SSE stream mid-call', inputSchema: NO_ARGS }, async (_args, ctx) => {
    ctx.http?.closeSSE?.();
    await sleep(100);
    return text('Reconnection test completed successfully.');
  });
}

/** 2025-era server-to-client requests, pushed on the open request stream. */
function registerPushInteractionTools(server: McpServer): void {
  const elicitResult = async (ctx: ServerContext, params: Parameters<ServerContext['mcpReq']['elicitInput']>[0]) => {
    const result = await ctx.mcpReq.elicitInput(params);
    return text(`Elicitation completed: action=${result.action}, content=${JSON.stringify(result.content ?? {})}`);
  };

  server.registerTool('test_sampling', { description: 'Asks the client LLM', inputSchema: z.object({ prompt: z.string() }) }, async ({ prompt }, ctx) => {
    const result = await ctx.mcpReq.requestSampling({ messages: [{ role: 'user', content: { type: 'text', text: prompt } }], maxTokens: 100 });
    const content = Array.isArray(result.content) ? result.content[0] : result.content;
    return text(`LLM response: ${content?.type === 'text' ? content.text : 'No response'}`);
  });

  server.registerTool('test_elicitation', { description: 'Asks the user', inputSchema: z.object({ message: z.string() }) }, ({ message }, ctx) =>
    elicitResult(ctx, {
      message,
      requestedSchema: { type: 'object', properties: { response: { type: 'string', description: "User's response" } }, required: ['response'] },
    }),
  );

  server.registerTool('test_elicitation_sep1034_defaults', { description: 'Elicits with defaults (SEP-1034)', inputSchema: NO_ARGS }, (_args, ctx) =>
    elicitResult(ctx, {
      message: 'Please review and update the form fields with defaults',
      requestedSchema: {
        type: 'object',
        properties: {
          name: { type: 'string', default: 'John Doe' },
          age: { type: 'integer', default: 30 },
          score: { type: 'number', default: 95.5 },
          status: { type: 'string', enum: ['active', 'inactive', 'pending'], default: 'active' },
          verified: { type: 'boolean', default: true },
        },
        required: [],
      },
    }),
  );

  server.registerTool('test_elicitation_sep1330_enums', { description: 'Elicits with every enum form (SEP-1330)', inputSchema: NO_ARGS }, (_args, ctx) => {
    const titled = (prefix: string, word: string) =>
      ['First', 'Second', 'Third'].map((ordinal, i) => ({ const: `${prefix}${i + 1}`, title: `${ordinal} ${word}` }));
    return elicitResult(ctx, {
      message: 'Please select options from the enum fields',
      requestedSchema: {
        type: 'object',
        properties: {
          untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
          titledSingle: { type: 'string', oneOf: titled('value', 'Option') },
          legacyEnum: { type: 'string', enum: ['opt1', 'opt2', 'opt3'], enumNames: ['Option One', 'Option Two', 'Option Three'] },
          untitledMulti: { type: 'array', minItems: 1, maxItems: 3, items: { type: 'string', enum: ['option1', 'option2', 'option3'] } },
          titledMulti: { type: 'array', minItems: 1, maxItems: 3, items: { anyOf: titled('value', 'Choice') } },
        },
        required: [],
      },
    });
  });
}

/**
 * 2026-07-28 multi round-trip (SEP-2322): a tool answers `input_required` until the retry
 * carries what it asked for. State between rounds lives only in the HMAC-sealed requestState,
 * which the SDK verifies (McpServer `requestState.verify`) before a handler runs.
 */
function registerInputRequiredTools(server: McpServer, codec: StateCodec): void {
  const mint = (tool: string, extra: Record<string, unknown> = {}) => codec.mint({ tool, ...extra, nonce: randomUUID() });

  // Also driven by the result-type, missing-input-response, ignore-extra-params and
  // validate-input scenarios: anything but an accepted user_name asks again.
  server.registerTool('test_input_required_result_elicitation', { description: 'MRTR: elicits a name', inputSchema: NO_ARGS }, (_args, ctx) => {
    const name = acceptedContent<{ name: string }>(ctx.mcpReq.inputResponses, 'user_name')?.name;
    return typeof name === 'string' ? text(`Hello, ${name}!`) : inputRequired({ inputRequests: { user_name: askName() } });
  });

  server.registerTool('test_input_required_result_sampling', { description: 'MRTR: samples', inputSchema: NO_ARGS }, (_args, ctx) => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, 'capital_question');
    if (answer.kind !== 'sampling') {
      return inputRequired({
        inputRequests: {
          capital_question: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'What is the capital of France?' } }], maxTokens: 100 }),
        },
      });
    }
    const content = Array.isArray(answer.result.content) ? answer.result.content[0] : answer.result.content;
    return text(`Sampling response: ${content?.type === 'text' ? content.text : JSON.stringify(answer.result)}`);
  });

  server.registerTool('test_input_required_result_list_roots', { description: 'MRTR: lists roots', inputSchema: NO_ARGS }, (_args, ctx) => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, 'client_roots');
    if (answer.kind !== 'roots') return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } });
    return text(`Client exposed ${answer.roots.length} root(s): ${answer.roots.map((root) => root.uri).join(', ')}`);
  });

  server.registerTool('test_input_required_result_request_state', { description: 'MRTR: round-trips requestState', inputSchema: NO_ARGS }, async (_args, ctx) => {
    if (acceptedContent(ctx.mcpReq.inputResponses, 'confirm') === undefined) {
      return inputRequired({ inputRequests: { confirm: askConfirm() }, requestState: await mint('request_state') });
    }
    if (ctx.mcpReq.requestState() === undefined) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Missing requestState');
    return text('state-ok: requestState verified and confirmation received');
  });

  server.registerTool('test_input_required_result_multiple_inputs', { description: 'MRTR: three kinds at once', inputSchema: NO_ARGS }, async (_args, ctx) => {
    const responses = ctx.mcpReq.inputResponses;
    const name = acceptedContent<{ name: string }>(responses, 'user_name')?.name;
    const greeting = inputResponse(responses, 'greeting');
    const roots = inputResponse(responses, 'client_roots');
    if (typeof name === 'string' && greeting.kind === 'sampling' && roots.kind === 'roots') return text(`Hello ${name}, ${roots.roots.length} root(s) visible`);
    return inputRequired({
      inputRequests: {
        user_name: askName(),
        greeting: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Generate a greeting' } }], maxTokens: 50 }),
        client_roots: inputRequired.listRoots(),
      },
      requestState: await mint('multiple_inputs'),
    });
  });

  server.registerTool('test_input_required_result_multi_round', { description: 'MRTR: two rounds', inputSchema: NO_ARGS }, async (_args, ctx) => {
    const state = ctx.mcpReq.requestState<Record<string, unknown>>();
    const round = state?.tool === 'multi_round' && typeof state.round === 'number' ? state.round : 0;
    if (round === 0) return inputRequired({ inputRequests: { step1: askName('Step 1: What is your name?') }, requestState: await mint('multi_round', { round: 1 }) });
    if (round === 1) {
      const name = acceptedContent<{ name: string }>(ctx.mcpReq.inputResponses, 'step1')?.name ?? 'unknown';
      const step2 = inputRequired.elicit({
        message: 'Step 2: What is your favorite color?',
        requestedSchema: { type: 'object', properties: { color: { type: 'string' } }, required: ['color'] },
      });
      return inputRequired({ inputRequests: { step2 }, requestState: await mint('multi_round', { round: 2, name }) });
    }
    const color = acceptedContent<{ color: string }>(ctx.mcpReq.inputResponses, 'step2')?.color ?? 'unknown';
    return text(`Multi-round complete: ${String(state?.name)} likes ${color}`);
  });

  server.registerTool('test_input_required_result_tampered_state', { description: 'MRTR: refuses tampered state', inputSchema: NO_ARGS }, async (_args, ctx) => {
    if (ctx.mcpReq.requestState() !== undefined && acceptedContent(ctx.mcpReq.inputResponses, 'confirm') !== undefined) return text('integrity-ok');
    return inputRequired({ inputRequests: { confirm: askConfirm() }, requestState: await mint('tampered_state') });
  });

  // Asks only for what the request's declared client capabilities cover.
  server.registerTool('test_input_required_result_capabilities', { description: 'MRTR: capability-aware', inputSchema: NO_ARGS }, (_args, ctx) => {
    if (ctx.mcpReq.inputResponses !== undefined) return text('Capability-aware input requests fulfilled');
    const envelope = ctx.mcpReq.envelope as Record<string, ClientCapabilities | undefined> | undefined;
    const declared = envelope?.[CLIENT_CAPABILITIES_META_KEY];
    const inputRequests: InputRequests = {};
    if (declared?.elicitation !== undefined) inputRequests.user_name = askName();
    if (declared?.sampling !== undefined) {
      inputRequests.greeting = inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Generate a short greeting' } }], maxTokens: 50 });
    }
    if (declared?.roots !== undefined) inputRequests.client_roots = inputRequired.listRoots();
    return Object.keys(inputRequests).length === 0 ? text('No declared capability allows an input request') : inputRequired({ inputRequests });
  });
}

/** The diagnostic tools `server-stateless` (SEP-2575) calls by name. */
function registerStatelessDiagnostics(server: McpServer, hooks: EverythingHooks): void {
  // Needs sampling, which the scenario does not declare: the SDK must answer -32021.
  server.registerTool('test_missing_capability', { description: 'Needs the sampling capability', inputSchema: NO_ARGS }, (_args, ctx) => {
    if (ctx.mcpReq.inputResponses?.llm_answer !== undefined) return text('sampling round-trip complete');
    return inputRequired({
      inputRequests: { llm_answer: inputRequired.createMessage({ messages: [{ role: 'user', content: { type: 'text', text: 'Say pong' } }], maxTokens: 16 }) },
    });
  });
  server.registerTool('test_streaming_elicitation', { description: 'A plain result, no top-level requests', inputSchema: NO_ARGS }, () =>
    text('result frames only'),
  );
  // The SDK delivers ctx.mcpReq.log only when the request set _meta logLevel; the scenario sets none.
  server.registerTool('test_logging_tool', { description: 'Logs through the request channel', inputSchema: NO_ARGS }, async (_args, ctx) => {
    await ctx.mcpReq.log('info', 'test_logging_tool ran');
    return text('logged');
  });
  server.registerTool('test_trigger_tool_change', { description: 'Publishes tools/list_changed', inputSchema: NO_ARGS }, () => {
    hooks.toolsChanged();
    return text('tools_list_changed published');
  });
  server.registerTool('test_trigger_prompt_change', { description: 'Publishes prompts/list_changed', inputSchema: NO_ARGS }, () => {
    hooks.promptsChanged();
    return text('prompts_list_changed published');
  });
}
