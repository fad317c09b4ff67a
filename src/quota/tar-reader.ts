/**
 * A strict streaming tar reader that reads an archive as Python's tarfile does in stream mode (`r|`, which
 * Swift's bulk uses), for the shapes where that reading is certain, and refuses the rest (TarRefusal) rather
 * than guess. What it mirrors of tarfile (3.11):
 * - a header is any block whose checksum field matches the unsigned or the signed sum; the magic is not looked
 *   at; every number field must read (octal, or GNU base-256); a zero block ends the archive;
 * - a ustar prefix is put in front of the name whatever the magic; a type '\0' member whose name field ends in
 *   '/' is a directory;
 * - regular files are types '0', '\0' and '7'; links, directories, devices and fifos have no data whatever
 *   their size field says; members of any other type are skipped by their size;
 * - pax records ('x', 'X', and global 'g' ones, which apply to every later member) and GNU long names ('L')
 *   and long link names ('K') apply to the member after them; the pax `path` loses trailing slashes; a pax
 *   `size` replaces the header's, for the framing as well.
 * Refused: GNU sparse members (type 'S', pax GNU.sparse.*: tarfile expands them to a size the archive does not
 * show), `hdrcharset` (names decoded by the server's locale), pax records not spelled exactly
 * `<length> <key>=<value>\n` with UTF-8 keys and values and NUL padding, a pax size that is not plain digits,
 * `path` or `size` in a global header, extended headers chained in orders tarfile resolves by nesting, numbers
 * not in the plain spellings, extended headers over 1 MiB, global records over 1 MiB in all.
 */

/** The archive is one the proxy will not guess at: Swift is sent a tar it refuses as invalid. */
export class TarRefusal extends Error {}

/** The archive ended inside a member's data or headers (or its compression broke): Swift sees it end there. */
export class TarTruncated extends Error {}

export interface TarMember {
  /** A regular file (bulk makes it an object), or anything else (bulk skips it). */
  readonly regular: boolean;
  /** The name as tarfile reads it, in bytes (ustar prefix/name, GNU long name or pax path). */
  readonly name: Buffer;
  /** Data bytes in the archive (the file's size for a regular file). */
  readonly size: number;
  /** The member's pax records (global ones first), in the order tarfile's dict holds them. */
  readonly pax: ReadonlyMap<string, string>;
}

export const MAX_EXTENDED_HEADER = 1024 * 1024;
const REGULAR_TYPES = new Set(['0', '\0', '7']);
/** Types tarfile knows and gives no data (besides the extended headers read apart). */
const DATALESS_TYPES = new Set(['1', '2', '3', '4', '5', '6']);
const EXTENDED_TYPES = new Set(['x', 'X', 'g', 'L', 'K']);
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Bytes from an async source, taken in exact amounts. */
export class ByteReader {
  private readonly chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  /** Bytes taken so far. */
  offset = 0;

  constructor(private readonly source: AsyncIterator<Buffer>) {}

  private async fill(wanted: number): Promise<void> {
    while (this.buffered < wanted && !this.done) {
      const next = await this.source.next();
      if (next.done) this.done = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
  }

  private take(most: number): Buffer {
    const first = this.chunks[0]!;
    const piece = first.length <= most ? (this.chunks.shift() as Buffer) : first.subarray(0, most);
    if (piece !== first) this.chunks[0] = first.subarray(most);
    this.buffered -= piece.length;
    this.offset += piece.length;
    return piece;
  }

  /** `length` bytes, or fewer when the source ends first. */
  async read(length: number): Promise<Buffer> {
    await this.fill(length);
    const pieces: Buffer[] = [];
    let left = Math.min(length, this.buffered);
    while (left > 0) {
      const piece = this.take(left);
      pieces.push(piece);
      left -= piece.length;
    }
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  /** The next `length` bytes in the pieces they arrive in; throws TarTruncated if the source ends first. */
  async *pieces(length: number): AsyncGenerator<Buffer> {
    let left = length;
    while (left > 0) {
      if (this.buffered === 0) await this.fill(1);
      if (this.buffered === 0) throw new TarTruncated('the archive ends inside a member');
      const piece = this.take(left);
      left -= piece.length;
      yield piece;
    }
  }

  async skip(length: number): Promise<void> {
    for await (const piece of this.pieces(length)) void piece;
  }
}

/** tarfile's nts: the bytes before the first NUL. */
function beforeNul(field: Buffer): Buffer {
  const nul = field.indexOf(0);
  return nul < 0 ? field : field.subarray(0, nul);
}

/**
 * A number field as tarfile's nti reads it, in the spellings where that is certain: GNU base-256 (0x80
 * positive, 0xff negative), or octal digits between optional spaces, ending at a NUL. Anything else refused.
 */
export function readNumber(field: Buffer): number {
  if (field[0] === 0x80 || field[0] === 0xff) {
    let value = 0n;
    for (const byte of field.subarray(1)) value = (value << 8n) | BigInt(byte);
    if (field[0] === 0xff) value -= 256n ** BigInt(field.length - 1);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER)) throw new TarRefusal('a number too large');
    return Number(value);
  }
  const text = beforeNul(field).toString('latin1');
  const match = /^ *([0-7]*) *$/.exec(text);
  if (!match) throw new TarRefusal('a number field not in plain octal');
  return match[1] ? parseInt(match[1], 8) : 0;
}

/** Whether the checksum field matches the unsigned or the signed sum of the block (tarfile takes both). */
function checksumMatches(block: Buffer): boolean {
  const stated = readNumber(block.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const byte = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stated === unsigned || stated === signed;
}

interface RawHeader {
  readonly type: string;
  readonly name: Buffer;
  readonly size: number;
}

/** A header block: 'end' (all zeros), 'invalid' (checksum mismatch), or its fields. */
export function parseHeader(block: Buffer): RawHeader | 'end' | 'invalid' {
  if (block.every((byte) => byte === 0)) return 'end';
  if (!checksumMatches(block)) return 'invalid';
  for (const [from, to] of [[100, 108], [108, 116], [116, 124], [136, 148], [329, 337], [337, 345]] as const) readNumber(block.subarray(from, to));
  const size = readNumber(block.subarray(124, 136));
  if (size < 0) throw new TarRefusal('a negative size');
  let type = String.fromCharCode(block[156]!);
  const ownName = beforeNul(block.subarray(0, 100));
  if (type === '\0' && ownName.at(-1) === 0x2f) type = '5';
  if (type === 'S') throw new TarRefusal('a GNU sparse member');
  const prefix = beforeNul(block.subarray(345, 500));
  const name = prefix.length > 0 && type !== 'L' && type !== 'K' ? Buffer.concat([prefix, Buffer.from('/'), ownName]) : ownName;
  return { type, name, size };
}

function decodeUtf8(bytes: Buffer, what: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new TarRefusal(`a pax ${what} that is not UTF-8`);
  }
}

/**
 * Pax records, spelled exactly `<length> <key>=<value>\n` one after another over `data`, then NUL padding
 * (tarfile reads records on into the padding; only NULs stop it where the records end).
 */
export function parsePaxRecords(data: Buffer, padding: Buffer): Array<[string, string]> {
  if (data.includes('hdrcharset=')) throw new TarRefusal('a pax hdrcharset');
  if (!padding.every((byte) => byte === 0)) throw new TarRefusal('pax records followed by more than padding');
  const records: Array<[string, string]> = [];
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    const lengthText = space < 0 ? '' : data.subarray(at, space).toString('latin1');
    if (!/^[1-9][0-9]{0,8}$/.test(lengthText)) throw new TarRefusal('a pax record length not in digits');
    const end = at + Number(lengthText);
    const record = data.subarray(space + 1, end);
    const equals = record.indexOf(0x3d);
    if (end > data.length || end <= space + 1 || record.at(-1) !== 0x0a || equals <= 0 || equals > record.length - 2) {
      throw new TarRefusal('a malformed pax record');
    }
    const key = decodeUtf8(record.subarray(0, equals), 'key');
    if (/[\0-\x1f\x7f]/.test(key)) throw new TarRefusal('a pax key with control characters');
    records.push([key, decodeUtf8(record.subarray(equals + 1, record.length - 1), 'value')]);
    at = end;
  }
  return records;
}

const padTo512 = (size: number) => (512 - (size % 512)) % 512;

/** The members of a tar archive, read from `bytes` one at a time (the data of each read or skipped before the next). */
export class TarReader {
  private readonly global = new Map<string, string>();
  /** The characters of the global records held (keys and values). */
  private globalLength = 0;
  private unread = 0;
  private unreadPadding = 0;
  private started = false;

  constructor(private readonly bytes: ByteReader) {}

  /** The next member, or undefined at the end of the archive (a zero block, a bad header after the first, or the end of the bytes). */
  async next(): Promise<TarMember | undefined> {
    await this.bytes.skip(this.unread);
    await this.bytes.skip(this.unreadPadding);
    this.unread = this.unreadPadding = 0;
    let local: Map<string, string> | undefined;
    let longName: Buffer | undefined;
    let pending: string | undefined;
    for (;;) {
      const block = await this.bytes.read(512);
      const parsed = block.length === 512 ? parseHeader(block) : 'short';
      if (typeof parsed === 'string') {
        // tarfile: a header that must follow an extended one is an error; otherwise the end, after a first member.
        if (pending) throw new TarRefusal('an extended header not followed by a member');
        // (A zero block first is an empty archive to tarfile; no bytes at all it refuses, and so does Swift's bulk.)
        if (!this.started && parsed !== 'end' && block.length > 0) throw new TarRefusal(`a first header that is ${parsed}`);
        return undefined;
      }
      const { type } = parsed;
      if (EXTENDED_TYPES.has(type)) {
        this.checkChain(pending, type);
        pending = type;
        const data = await this.extendedData(parsed.size);
        if (type === 'L') longName = beforeGnuNul(data.subarray(0, parsed.size));
        else if (type === 'g') this.addGlobal(parsePaxRecords(data.subarray(0, parsed.size), data.subarray(parsed.size)));
        else if (type !== 'K') local = new Map(parsePaxRecords(data.subarray(0, parsed.size), data.subarray(parsed.size)));
        continue;
      }
      this.started = true;
      return this.member(parsed, local, longName);
    }
  }

  /** The current member's data, in pieces (TarTruncated if the archive ends inside it). */
  async *data(): AsyncGenerator<Buffer> {
    const length = this.unread;
    this.unread = 0;
    yield* this.bytes.pieces(length);
  }

  /** Orders tarfile resolves one header at a time; any other nesting of extended headers is refused. */
  private checkChain(pending: string | undefined, type: string): void {
    const allowed = pending === undefined || pending === 'g' || (pending === 'K' && type === 'L');
    if (!allowed) throw new TarRefusal(`an extended header '${type}' after '${pending}'`);
  }

  private async extendedData(size: number): Promise<Buffer> {
    if (size > MAX_EXTENDED_HEADER) throw new TarRefusal('an extended header over 1 MiB');
    const data = await this.bytes.read(size + padTo512(size));
    if (data.length < size + padTo512(size)) throw new TarTruncated('the archive ends inside an extended header');
    return data;
  }

  private addGlobal(records: Array<[string, string]>): void {
    for (const [key, value] of records) {
      if (key === 'path' || key === 'size') throw new TarRefusal(`a global pax ${key}`);
      const replaced = this.global.get(key);
      this.globalLength += key.length + value.length - (replaced === undefined ? 0 : key.length + replaced.length);
      // Kept for the rest of the archive: one global header after another must not make the proxy hold them all.
      if (this.globalLength > MAX_EXTENDED_HEADER) throw new TarRefusal('global pax records over 1 MiB in all');
      this.global.set(key, value);
    }
  }

  private member(header: RawHeader, local: Map<string, string> | undefined, longName: Buffer | undefined): TarMember {
    const pax = new Map(this.global);
    for (const [key, value] of local ?? []) pax.set(key, value);
    for (const key of pax.keys()) if (key.startsWith('GNU.sparse.')) throw new TarRefusal('a GNU sparse record');
    let name = longName ?? header.name;
    const path = local?.get('path');
    if (path !== undefined) name = Buffer.from(path.replace(/\/+$/, ''), 'utf8');
    let size = header.size;
    const paxSize = local?.get('size');
    if (paxSize !== undefined) {
      if (!/^[0-9]{1,15}$/.test(paxSize)) throw new TarRefusal('a pax size not in plain digits');
      size = Number(paxSize);
    }
    const regular = REGULAR_TYPES.has(header.type);
    const dataSize = DATALESS_TYPES.has(header.type) ? 0 : size;
    this.unread = dataSize;
    this.unreadPadding = padTo512(dataSize);
    return { regular, name, size: dataSize, pax };
  }
}

/** A GNU long name: the bytes before its NUL, which must be inside the stated size (tarfile would read on into the padding). */
function beforeGnuNul(data: Buffer): Buffer {
  const nul = data.indexOf(0);
  if (nul < 0) throw new TarRefusal('a GNU long name without its NUL');
  return data.subarray(0, nul);
}
