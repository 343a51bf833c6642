/**
 * Child process: the sample MCP upstream (a real @modelcontextprotocol/sdk server), stateful,
 * answering POSTs with plain JSON. Prints {"url": …} once listening.
 */
import { startSampleUpstream } from '../dev/upstream.js';
import { exitWithParent } from './child-lifetime.js';

const upstream = await startSampleUpstream({ responseMode: 'json', stateless: false });

// The sample server records every request for tests to inspect; under load that log would grow
// by thousands of entries a second and turn into GC work that has nothing to do with MCP.
setInterval(() => upstream.clearLog(), 1_000);

exitWithParent(() => upstream.close());
process.stdout.write(`${JSON.stringify({ url: upstream.url })}\n`);
