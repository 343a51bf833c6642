import type { IncomingMessage } from 'node:http';
import { Refusal } from '../errors.js';

/**
 * Reads a whole stream, stopping as soon as it grows past `maxBytes`: resolves 'too-large'
 * then, without destroying the stream (a response can still be written on its connection).
 * Rejects if the stream fails or ends early.
 */
export async function readBounded(stream: IncomingMessage, maxBytes: number): Promise<Buffer | 'too-large'> {
  const chunks = await readBoundedChunks(stream, maxBytes);
  return chunks === 'too-large' ? chunks : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** As readBounded, in the chunks the stream delivered (nothing joined or copied). */
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

/** The request body, or a 413 refusal as soon as it grows past `maxBytes`. */
export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  if (Number(req.headers['content-length']) > maxBytes) throw tooLarge(maxBytes);
  let body: Buffer | 'too-large';
  try {
    body = await readBounded(req, maxBytes);
  } catch {
    throw new Refusal('invalid_message', 'Request body was not received completely');
  }
  if (body === 'too-large') throw tooLarge(maxBytes);
  return body;
}

function tooLarge(maxBytes: number): Refusal {
  return new Refusal('payload_too_large', `Request body larger than ${maxBytes} bytes`);
}
