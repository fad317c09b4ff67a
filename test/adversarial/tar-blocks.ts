/**
 * Raw tar blocks built by hand, so that a test controls every byte a tar reader sees: header fields (numbers
 * in octal, base-256 or anything else), the checksum, the magic, ustar prefixes, pax records spelled at will,
 * GNU long names, padding. No tar library is involved.
 */

export interface HeaderFields {
  name?: string | Buffer;
  /** The ustar prefix field (bytes 345..500). */
  prefix?: string | Buffer;
  /** A number, or the raw bytes of the 12-byte size field. */
  size?: number | Buffer;
  /** Type flag: '0', '\0', '5', 'x', 'L', ... */
  type?: string;
  linkname?: string;
  magic?: 'ustar' | 'gnu' | 'none';
  mode?: Buffer;
  mtime?: Buffer;
  /** Replaces the computed checksum field (8 bytes). */
  checksum?: Buffer;
  /** Add this to the computed checksum (a wrong one). */
  checksumDelta?: number;
  /** Write the checksum as the signed sum (bytes read as int8), as some old tars did. */
  signedChecksum?: boolean;
}

const bytes = (value: string | Buffer): Buffer => (typeof value === 'string' ? Buffer.from(value, 'utf8') : value);

/** An octal number field of `width` bytes: digits, then a NUL. */
export function octal(value: number, width: number): Buffer {
  return Buffer.from(`${value.toString(8).padStart(width - 1, '0')}\0`, 'latin1');
}

/** A base-256 number field (GNU): 0x80, then the value big-endian. */
export function base256(value: bigint, width: number): Buffer {
  const field = Buffer.alloc(width);
  field[0] = 0x80;
  let rest = value;
  for (let i = width - 1; i > 0; i--) {
    field[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
  return field;
}

/** One 512-byte header block. */
export function header(fields: HeaderFields): Buffer {
  const block = Buffer.alloc(512);
  bytes(fields.name ?? '').copy(block, 0, 0, 100);
  (fields.mode ?? octal(0o644, 8)).copy(block, 100, 0, 8);
  octal(0, 8).copy(block, 108);
  octal(0, 8).copy(block, 116);
  const size = fields.size ?? 0;
  (typeof size === 'number' ? octal(size, 12) : size).copy(block, 124, 0, 12);
  (fields.mtime ?? octal(0, 12)).copy(block, 136, 0, 12);
  block.write(fields.type ?? '0', 156, 1, 'latin1');
  if (fields.linkname) block.write(fields.linkname, 157, 100, 'utf8');
  const magic = fields.magic ?? 'ustar';
  if (magic === 'ustar') block.write('ustar\u000000', 257, 8, 'latin1');
  else if (magic === 'gnu') block.write('ustar  \u0000', 257, 8, 'latin1');
  if (fields.prefix !== undefined) bytes(fields.prefix).copy(block, 345, 0, 155);
  if (fields.checksum) {
    fields.checksum.copy(block, 148, 0, 8);
    return block;
  }
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += fields.signedChecksum && byte > 127 ? byte - 256 : byte;
  sum += fields.checksumDelta ?? 0;
  Buffer.from(`${(sum >>> 0).toString(8).padStart(6, '0')}\0 `, 'latin1').copy(block, 148);
  return block;
}

/** `data` followed by NULs to the next 512-byte boundary (or `padding` instead of NULs). */
export function padded(data: string | Buffer, padding?: Buffer): Buffer {
  const body = bytes(data);
  const rest = (512 - (body.length % 512)) % 512;
  const pad = Buffer.alloc(rest);
  if (padding) padding.copy(pad, 0, 0, rest);
  return Buffer.concat([body, pad]);
}

/** One pax record, `<length> <key>=<value>\n`, its length counting itself. */
export function paxRecord(key: string | Buffer, value: string | Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(' '), bytes(key), Buffer.from('='), bytes(value), Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length)), body]);
}

/** A pax extended header ('x', or 'g' for a global one) holding `records` (raw, or key/value pairs). */
export function pax(records: Array<[string, string]> | Buffer, type = 'x'): Buffer {
  const data = Buffer.isBuffer(records) ? records : Buffer.concat(records.map(([key, value]) => paxRecord(key, value)));
  return Buffer.concat([header({ name: 'PaxHeader', size: data.length, type }), padded(data)]);
}

/** A regular file: its header and its data. */
export function file(name: string, data: string | Buffer, fields: HeaderFields = {}): Buffer {
  const body = bytes(data);
  return Buffer.concat([header({ name, size: body.length, ...fields }), padded(body)]);
}

/** The end of an archive: two zero blocks. */
export const END = Buffer.alloc(1024);
