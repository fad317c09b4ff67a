/**
 * Reading an upstream answer's body (Swift's, Keystone's) into memory, never more of it than the caller means to
 * hold.
 */
import type { Dispatcher } from 'undici';

/** A body larger than the proxy would read (a manifest past Swift's own limit). */
export class BodyTooLargeError extends Error {
  readonly code = 'SQP_ERR_BODY_TOO_LARGE';
}

/** A response body, at most `maxBytes` of it: past that, an error, or (`truncate`) the first `maxBytes`. */
export async function readBody(body: Dispatcher.ResponseData['body'], maxBytes: number, truncate = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of body) {
    length += (chunk as Buffer).length;
    chunks.push(chunk as Buffer);
    if (length > maxBytes) {
      body.destroy();
      if (!truncate) throw new BodyTooLargeError(`response body over ${maxBytes} bytes`);
      return Buffer.concat(chunks).subarray(0, maxBytes);
    }
  }
  return Buffer.concat(chunks);
}

