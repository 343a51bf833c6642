import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { Refusal } from '../../src/errors.js';

/** The Refusal `fn` throws; fails the test if it throws nothing or something else. */
export function refusalOf(fn: () => unknown): Refusal {
  try {
    fn();
  } catch (error) {
    if (error instanceof Refusal) return error;
    throw error;
  }
  throw new Error('expected a Refusal, nothing was thrown');
}

/** The Refusal `promise` rejects with; fails the test if it resolves or rejects otherwise. */
export async function rejectionOf(promise: Promise<unknown>): Promise<Refusal> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Refusal) return error;
    throw error;
  }
  throw new Error('expected a Refusal, the promise resolved');
}

/** The MCP error an SDK client call rejects with; fails the test if it resolves or rejects otherwise. */
export async function mcpErrorOf(call: Promise<unknown>): Promise<McpError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof McpError) return error;
    throw error;
  }
  throw new Error('expected an MCP error, the call succeeded');
}
