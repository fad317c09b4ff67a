/**
 * Swift's bulk middleware deletes every object a `POST` or `DELETE` with `?bulk-delete` lists in its body (one
 * URL-encoded `container/object` of the account per line), through the rest of the pipeline: legacy versioning
 * archives each one (history mode) or restores the one before (stack mode), as for a single DELETE. Bulk reads
 * the whole list before it deletes anything, so the list is checked as it streams: each line is passed on once
 * its container has been looked at, and a line in a container where Swift would store on delete cuts the list
 * (Swift then deletes nothing). Pure but for the check it is given.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** The list was cut: `reason` is the refusal the client gets. */
export class DeleteListRefused extends Error {
  override name = 'DeleteListRefused';
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** The container a bulk-delete line names, as bulk reads it (stripped, percent-decoded, leading slashes off). */
export function containerOfLine(line: Buffer): string | undefined {
  // bytes.strip(): ASCII whitespace only.
  const stripped = line.toString('latin1').replace(/^[ \t\n\r\v\f]+|[ \t\n\r\v\f]+$/g, '');
  const name = percentDecode(Buffer.from(stripped, 'latin1')).toString('utf8').replace(/^\/+/, '');
  if (name === '') return undefined;
  const slash = name.indexOf('/');
  return slash < 0 ? name : name.slice(0, slash);
}

/** `urllib.parse.unquote_to_bytes`: `%XX` (hex) becomes its byte, anything else stays as it is. */
function percentDecode(bytes: Buffer): Buffer {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    const hex = bytes[i] === 0x25 && i + 2 < bytes.length ? bytes.subarray(i + 1, i + 3).toString('latin1') : '';
    if (/^[0-9a-fA-F]{2}$/.test(hex)) {
      out.push(parseInt(hex, 16));
      i += 2;
    } else {
      out.push(bytes[i]!);
    }
  }
  return Buffer.from(out);
}

/**
 * Passes a delete list on line by line, each once `check` has looked at its container (undefined: it may go on;
 * a string: the list is cut with that refusal). An unfinished line is held back until it ends or the list does.
 */
export function createDeleteListChecker(check: (container: string) => Promise<string | undefined>): Transform {
  let pending = Buffer.alloc(0);
  const checkLines = async (lines: Buffer): Promise<void> => {
    for (let start = 0; start < lines.length; ) {
      const end = lines.indexOf(0x0a, start);
      const line = lines.subarray(start, end < 0 ? lines.length : end);
      const container = containerOfLine(line);
      const refusal = container === undefined ? undefined : await check(container);
      if (refusal !== undefined) throw new DeleteListRefused(refusal);
      start = end < 0 ? lines.length : end + 1;
    }
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      const data = Buffer.concat([pending, chunk]);
      const lastBreak = data.lastIndexOf(0x0a);
      const whole = lastBreak < 0 ? Buffer.alloc(0) : data.subarray(0, lastBreak + 1);
      pending = lastBreak < 0 ? data : data.subarray(lastBreak + 1);
      checkLines(whole).then(() => callback(null, whole), (error: Error) => callback(error));
    },
    flush(callback: TransformCallback) {
      checkLines(pending).then(() => callback(null, pending), (error: Error) => callback(error));
    },
  });
}
