import type { IncomingMessage } from 'node:http';
import { Refusal } from '../errors.js';

const EMPTY = Buffer.alloc(0);

/**
 * The whole message when it has already arrived, taken without listeners or a promise; else
 * undefined (more is to come). A small request comes in the same packet as its head, and Node's
 * parser has buffered all of it once the handler has waited for any I/O (the session check's
 * Redis round trip; microtasks alone run before the parser reaches the body). 'too-large' leaves
 * the stream as it was.
 */
export function receivedWhole(stream: IncomingMessage, maxBytes: number): Buffer | 'too-large' | undefined {
  // complete: the parser has pushed the last byte; not flowing and not ended: nobody read it yet.
  if (!stream.complete || stream.readableFlowing !== null || stream.readableEnded) return undefined;
  if (stream.readableLength > maxBytes) return 'too-large';
  // Everything buffered, joined if it came in several chunks; 'end' follows. One read() took it
  // all up to Node 24; since Node 26 each read() gives one chunk, so read until none is left.
  const first = stream.read() as Buffer | null;
  if (first === null) return EMPTY;
  if (stream.readableLength === 0) return first;
  const chunks = [first];
  for (let chunk = stream.read() as Buffer | null; chunk !== null; chunk = stream.read() as Buffer | null) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * Reads a whole stream, in the chunks it delivered (nothing joined or copied), stopping as soon
 * as it grows past `maxBytes`: resolves 'too-large' then, without destroying the stream (a
 * response can still be written on its connection). Rejects if the stream fails or ends early.
 */
export function readBoundedChunks(stream: IncomingMessage, maxBytes: number): Promise<Buffer[] | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) {
        chunks.push(chunk);
        return;
      }
      cleanup();
      stream.pause();
      resolve('too-large');
    };
    const onEnd = () => {
      cleanup();
      resolve(chunks);
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onClose = () => onError(new Error('stream closed before its end'));
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}

/**
 * The request body, or a 413 refusal as soon as it grows past `maxBytes`. A body still on its
 * way is given one turn of the event loop first: Node's parser runs the request handler (and the
 * microtasks after it) before it reaches a body that came in the same packet as the head, and has
 * pushed all of it by then, so one read() takes it instead of four listeners and a promise.
 */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  if (Number(req.headers['content-length']) > maxBytes) throw tooLarge(maxBytes);
  let body = receivedWhole(req, maxBytes);
  if (body === undefined && !req.complete) {
    await nextTurn();
    body = receivedWhole(req, maxBytes);
  }
  if (body === undefined) {
    try {
      const chunks = await readBoundedChunks(req, maxBytes);
      body = chunks === 'too-large' ? chunks : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    } catch {
      throw new Refusal('invalid_message', 'Request body was not received completely');
    }
  }
  if (body === 'too-large') throw tooLarge(maxBytes);
  return body;
}

/** Resolves in the event loop's check phase, after the I/O callbacks of this turn. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

function tooLarge(maxBytes: number): Refusal {
  return new Refusal('payload_too_large', `Request body larger than ${maxBytes} bytes`);
}
