/**
 * FormPost uploads (`POST` of `multipart/form-data` to `/v1/<account>/<container>[/<prefix>]`, signed with a
 * tempurl key): Swift's formpost middleware stores every file part of the form as an object while the form
 * streams in. This module reads the form exactly as formpost reads it, so that each file is admitted before
 * its bytes pass and the form is cut at the first file or chunk past a limit.
 *
 * Swift's reading (swift/common/utils.py `iter_multipart_mime_documents`, `parse_mime_headers`,
 * `parse_content_disposition`; formpost.py `_translate_form`) is peculiar, and a general multipart parser
 * reads other forms out of the same bytes: Swift takes the first line (read `len("--" + boundary) + 2` bytes at
 * a time, after skipping empty lines) as the opening boundary if it strips to it, ends a part at the next
 * `\r\n--<boundary>` wherever it stands, skips the two bytes after it and stops if they are `--`, ends a part's
 * headers at the first empty line, and takes a part for a file when its Content-Disposition is `form-data`
 * with a non-empty `filename`. This parser follows those rules byte for byte where the count depends on them
 * (where parts begin and end), and where it cannot be sure what Swift makes of a part's headers it takes the
 * part for a file: counted, never waved through.
 */
import { Transform, type TransformCallback } from 'node:stream';

/** What formpost reads of a form before a file: its fields (lower-cased names; each value's first 4096 bytes). */
export type FormAttributes = ReadonlyMap<string, string>;

/** A stream piece as the parser reads it. */
export type FormSegment =
  | { readonly type: 'bytes'; readonly data: Buffer; readonly file: boolean }
  /**
   * A file part begins (its headers have been read): formpost PUTs it as an object now. `filename` is given
   * when the proxy is sure how Swift reads the part's headers.
   */
  | { readonly type: 'file'; readonly attributes: FormAttributes; readonly filename: string | undefined };

/** formpost's `MAX_VALUE_LENGTH`: a field's value is its first 4096 bytes. */
const MAX_VALUE_LENGTH = 4096;
/** Longer header blocks are not read to their end: the part is taken for a file from there on. */
const MAX_HEADER_BLOCK = 64 * 1024;
const CRLF = Buffer.from('\r\n');

/** Python's `bytes.strip()`: ASCII whitespace. */
function pyStrip(bytes: Buffer): Buffer {
  const space = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);
  let start = 0;
  let end = bytes.length;
  while (start < end && space(bytes[start]!)) start++;
  while (end > start && space(bytes[end - 1]!)) end--;
  return bytes.subarray(start, end);
}

// Python's `(\w+)=(".*?"|[^";]+)(; ?|$)`, with Python's Unicode \w and a "." that stops only at "\n".
const ATTRIBUTE = /^([\p{L}\p{N}_]+)=("[^\n]*?"|[^";]+)(; ?|$)/u;

/** Swift's `parse_content_disposition` (also used for Content-Type): the value and its attributes. */
export function parseContentDisposition(header: string): { value: string; attributes: Map<string, string> } {
  const attributes = new Map<string, string>();
  let value = header;
  let rest = '';
  const semicolon = header.indexOf(';');
  if (semicolon >= 0) {
    value = header.slice(0, semicolon).trim();
    rest = header.slice(semicolon + 1).trim();
  }
  for (let match = ATTRIBUTE.exec(rest); match; match = ATTRIBUTE.exec(rest)) {
    rest = rest.slice(match[0].length);
    attributes.set(match[1]!, match[2]!.replace(/^"+|"+$/g, ''));
    if (match[0].length === 0) break;
  }
  return { value, attributes };
}

/**
 * The boundary of a request Swift's formpost takes for a form: Content-Type exactly `multipart/form-data` with
 * a boundary. Returned as the bytes Swift looks for (it encodes the header's characters as UTF-8).
 */
export function formBoundary(contentType: string | undefined): Buffer | undefined {
  const { value, attributes } = parseContentDisposition(contentType ?? '');
  const boundary = attributes.get('boundary');
  return value === 'multipart/form-data' && boundary !== undefined ? Buffer.from(boundary, 'utf8') : undefined;
}

/**
 * What Swift makes of a part's header block, when the proxy can be sure: a field (with its name, if it has
 * one) or a file. Anything unusual (folded or non-ASCII lines, lines that are no header, two
 * Content-Dispositions) is taken for a file.
 */
function classify(block: Buffer): { file: true; filename?: string } | { file: false; name: string | undefined } {
  const text = block.toString('latin1');
  const lines = text.split('\r\n');
  if (lines[lines.length - 1] === '') lines.pop();
  let disposition: string | undefined;
  for (const line of lines) {
    if (!/^[!-9;-~]+:[ -~]*$/.test(line)) return { file: true };
    const colon = line.indexOf(':');
    if (line.slice(0, colon).toLowerCase() !== 'content-disposition') continue;
    if (disposition !== undefined) return { file: true };
    disposition = line.slice(colon + 1).replace(/^[ \t]+/, '');
  }
  const { value, attributes } = parseContentDisposition(disposition ?? '');
  const filename = attributes.get('filename');
  if (value === 'form-data' && filename) return { file: true, filename };
  return { file: false, name: attributes.get('name') };
}

type State = 'start' | 'headers' | 'body' | 'delimiter' | 'done' | 'invalid';

/**
 * Reads a form's bytes as Swift's formpost does and cuts them into segments: bytes that are file content (what
 * Swift stores), other bytes, and the start of each file.
 */
export class SwiftFormParser {
  private state: State = 'start';
  private buffer: Buffer = Buffer.alloc(0);
  private readonly opening: Buffer;
  private readonly delimiter: Buffer;
  private readonly attributes = new Map<string, string>();
  /** The current part: a file, or a field whose value is being collected. */
  private part: { file: boolean; name: string | undefined; value: Buffer[]; valueLength: number } = { file: false, name: undefined, value: [], valueLength: 0 };

  constructor(boundary: Buffer) {
    this.opening = Buffer.concat([Buffer.from('--'), boundary]);
    this.delimiter = Buffer.concat([CRLF, this.opening]);
  }

  /** Whether the form's opening line was one Swift accepts (if not, Swift stores nothing of it). */
  get valid(): boolean {
    return this.state !== 'invalid';
  }

  push(chunk: Buffer): FormSegment[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    return this.run(false);
  }

  end(): FormSegment[] {
    return this.run(true);
  }

  private run(ended: boolean): FormSegment[] {
    const out: FormSegment[] = [];
    const emit = (length: number, file: boolean) => {
      if (length <= 0) return;
      out.push({ type: 'bytes', data: this.buffer.subarray(0, length), file });
      this.buffer = this.buffer.subarray(length);
    };
    for (;;) {
      const before = this.buffer.length;
      const state = this.state;
      switch (state) {
        case 'start': {
          // readline(len("--" + boundary) + 2), skipping lines that are exactly "\r\n".
          const limit = this.opening.length + 2;
          const newline = this.buffer.indexOf(0x0a);
          const lineLength = newline >= 0 && newline < limit ? newline + 1 : this.buffer.length >= limit ? limit : ended ? this.buffer.length : -1;
          if (lineLength < 0) return out;
          const line = this.buffer.subarray(0, lineLength);
          emit(lineLength, false);
          if (line.equals(CRLF)) break;
          this.state = pyStrip(line).equals(this.opening) ? 'headers' : 'invalid';
          this.beginPart();
          break;
        }
        case 'headers': {
          const end = this.headerEnd(ended);
          if (end === undefined) {
            if (this.buffer.length <= MAX_HEADER_BLOCK) return out;
            // Headers Swift would read on and on: count everything from here as the file it may be.
            this.part.file = true;
            out.push({ type: 'file', attributes: new Map(this.attributes), filename: undefined });
            this.state = 'body';
            break;
          }
          const kind = classify(this.buffer.subarray(0, end.block));
          this.part.file = kind.file;
          this.part.name = kind.file ? undefined : kind.name;
          // A file is announced before its headers pass: a form cut there ends where a part could end.
          if (kind.file) out.push({ type: 'file', attributes: new Map(this.attributes), filename: kind.filename });
          emit(end.consumed, false);
          this.state = 'body';
          break;
        }
        case 'body': {
          const at = this.buffer.indexOf(this.delimiter);
          if (at >= 0) {
            this.collect(this.buffer.subarray(0, at));
            emit(at, this.part.file);
            emit(this.delimiter.length, false);
            this.endPart();
            this.state = 'delimiter';
            break;
          }
          // Keep what could be the start of a delimiter until more bytes show whether it is.
          const safe = ended ? this.buffer.length : this.buffer.length - (this.delimiter.length - 1);
          if (safe > 0) {
            this.collect(this.buffer.subarray(0, safe));
            emit(safe, this.part.file);
          }
          if (ended) {
            this.endPart();
            this.state = 'done';
          }
          return out;
        }
        case 'delimiter': {
          // Two bytes after a delimiter are skipped; "--" means no more parts.
          if (this.buffer.length < 2 && !ended) return out;
          const last = this.buffer.subarray(0, 2).equals(Buffer.from('--'));
          emit(Math.min(2, this.buffer.length), false);
          this.state = last ? 'done' : 'headers';
          if (!last) this.beginPart();
          break;
        }
        case 'done':
        case 'invalid':
          emit(this.buffer.length, false);
          return out;
      }
      if (this.buffer.length === before && this.state === state && state !== 'start') return out;
    }
  }

  /**
   * Where the current part's header block ends, as Swift's readline finds it: at the first line that is
   * exactly "\r\n" (the body follows it), or at the part's end (a delimiter, or the end of the form).
   */
  private headerEnd(ended: boolean): { block: number; consumed: number } | undefined {
    let line = 0;
    for (;;) {
      const newline = this.buffer.indexOf(CRLF, line);
      const delimiter = this.buffer.indexOf(this.delimiter, line);
      if (delimiter >= 0 && (newline < 0 || delimiter <= newline)) return { block: delimiter, consumed: delimiter };
      if (newline < 0) return ended ? { block: this.buffer.length, consumed: this.buffer.length } : undefined;
      // A line break may be the start of a delimiter: Swift reads on until it can tell, and so does this.
      if (!ended && this.buffer.length < newline + this.delimiter.length) return undefined;
      if (newline === line) return { block: line, consumed: line + 2 };
      line = newline + 2;
    }
  }

  private beginPart(): void {
    this.part = { file: false, name: undefined, value: [], valueLength: 0 };
  }

  private collect(bytes: Buffer): void {
    if (this.part.file || this.part.valueLength >= MAX_VALUE_LENGTH) return;
    const take = bytes.subarray(0, MAX_VALUE_LENGTH - this.part.valueLength);
    this.part.value.push(take);
    this.part.valueLength += take.length;
  }

  private endPart(): void {
    const { file, name, value } = this.part;
    if (file || name === undefined) return;
    // formpost: value.decode('utf-8').rstrip('\r\n--'); names are lower-cased.
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.concat(value));
    } catch {
      return; // Swift fails the form here (500): no later file is stored; keeping on counting is safe.
    }
    this.attributes.set(name.toLowerCase(), text.replace(/[\r\n-]+$/, ''));
  }
}

export interface FormHandlers<R> {
  /**
   * A file begins (`filename`: its name, when the proxy is sure of it): undefined lets it through; a refusal cuts
   * the form before any of its bytes pass.
   */
  file(attributes: FormAttributes, filename: string | undefined): Promise<R | undefined>;
  /** `bytes` more bytes of the current file: undefined lets them through; a refusal cuts the form. */
  fileBytes(bytes: number): Promise<R | undefined>;
  /**
   * The form was cut. `partial` names the file that was passing (its name, when the proxy is sure of it), which
   * Swift stores as far as it came and which is to be removed once Swift has answered.
   */
  cut(refusal: R, partial: { filename: string | undefined } | undefined): void;
}

/**
 * A pass-through stream of the form that asks `handlers` before any file, and before any file byte, passes.
 *
 * A cut ends the form where it stands, as a whole request: Swift reads a form in blocks (64 KiB at a time for
 * a file) and stores a file only once it has read past it, so a broken connection could lose files that were
 * within the quota; an ended form never does. Cut before a file, nothing of it passes. Cut inside a file, the
 * bytes that passed were within the quota; Swift stores them as a shorter object, which the caller removes.
 */
export function createFormLimiter<R>(boundary: Buffer, handlers: FormHandlers<R>): Transform {
  const parser = new SwiftFormParser(boundary);
  let cut = false;
  /** The file being passed on: once its headers have passed, Swift has begun storing it. */
  let inFile: { filename: string | undefined } | undefined;
  const stop = (stream: Transform, refusal: R, partial: { filename: string | undefined } | undefined) => {
    cut = true;
    handlers.cut(refusal, partial);
    stream.push(null);
  };
  const apply = async (stream: Transform, segments: FormSegment[]) => {
    for (const segment of segments) {
      if (cut) return;
      if (segment.type === 'file') {
        inFile = undefined;
        const refusal = await handlers.file(segment.attributes, segment.filename);
        if (refusal !== undefined) return stop(stream, refusal, undefined);
        inFile = { filename: segment.filename };
        continue;
      }
      if (segment.file) {
        const refusal = await handlers.fileBytes(segment.data.length);
        if (refusal !== undefined) return stop(stream, refusal, inFile);
      }
      stream.push(segment.data);
    }
  };
  return new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      if (cut) return callback();
      apply(this, parser.push(chunk)).then(() => callback(), (error: unknown) => callback(error as Error));
    },
    flush(callback: TransformCallback) {
      if (cut) return callback();
      apply(this, parser.end()).then(() => callback(), (error: unknown) => callback(error as Error));
    },
  });
}
