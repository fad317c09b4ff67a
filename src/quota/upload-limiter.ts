/**
 * Counts the bytes of an upload whose size was not announced (chunked) while they stream to Swift, and
 * cuts the upload the moment the next chunk would pass the quota. Holding each chunk until the check
 * answers is what keeps memory flat: the socket is paused by ordinary backpressure meanwhile.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** Thrown (through the stream) when an upload is cut; the HTTP edge answers it 413 (http/quota-hooks.ts). */
export class UploadLimitError<R> extends Error {
  readonly code = 'SQP_ERR_UPLOAD_CUT';
  constructor(readonly rejection: R) {
    super('Upload exceeds quota.');
  }
}

/**
 * `admit(bytes)` decides whether `bytes` more may be written and, if so, reserves them; it answers with the
 * rejection (any value) when they may not.
 */
export type AdmitBytes<R> = (bytes: number) => R | undefined | Promise<R | undefined>;

export function createUploadLimiter<R>(admit: AdmitBytes<R>): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const settle = (rejection: R | undefined) => {
        if (rejection === undefined) callback(null, chunk);
        else callback(new UploadLimitError(rejection));
      };
      const answer = admit(chunk.length);
      if (answer instanceof Promise) answer.then(settle, (error: unknown) => callback(error as Error));
      else settle(answer);
    },
  });
}
